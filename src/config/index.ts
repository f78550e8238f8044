export { loadConfig, ConfigError, type AppConfig } from './load.ts';
export type { MerchantConfig, OfficialAccountConfig, ClientConfig, LinkingMethodConfig } from './schema.ts';
