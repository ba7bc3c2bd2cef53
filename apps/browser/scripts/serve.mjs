#!/usr/bin/env node
// Serves the page (index.html + dist/) on localhost: `npm run serve -w @tessera/browser-demo [-- --port N]`.
import { startServer } from './server.mjs';

const i = process.argv.indexOf('--port');
const { url } = await startServer(i >= 0 ? Number(process.argv[i + 1]) : 8123);
console.log(`Tessera browser demo: ${url}  (Ctrl-C to stop)`);
