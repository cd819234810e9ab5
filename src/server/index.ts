/** server/: the HTTP API around the engine and the store (`troupe server`). */
export { buildApp } from "./app.js";
export { RunManager, type Pool } from "./run-manager.js";
export { HttpThreadLink, type HttpThread } from "./http-thread.js";
export { startLocalUi, type LocalUi } from "./local-ui.js";
