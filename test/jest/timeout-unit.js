/** Default timeout of the `unit` jest project (jest.config.js): in-process tests; one that spawns processes passes its own. */
jest.setTimeout(60000);
