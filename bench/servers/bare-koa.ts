/** The baseline every benchmark is a ratio to: Koa hello-world on the same machine. */
import Koa from 'koa';

const app = new Koa();
app.use((ctx) => {
  ctx.body = 'hello';
});
app.listen(Number(process.env.PORT ?? 3900), '127.0.0.1', () => console.log('ready'));
