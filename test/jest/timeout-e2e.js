/** Default timeout of the `e2e` jest project (jest.config.js): the one timeout every test had before the split. */
jest.setTimeout(120000);
