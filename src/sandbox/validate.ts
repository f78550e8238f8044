/** zod at the sandbox's boundaries: a failed parse is a 400 `request.invalid` with zod's message. */
import { z } from 'zod';
import { AppError } from '../http/errors.ts';

export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new AppError('request.invalid', z.prettifyError(parsed.error));
  return parsed.data;
}
