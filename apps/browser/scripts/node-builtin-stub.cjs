// Stands in for Node's built-in modules in the browser bundle. The page never reaches
// the code that uses them (config files, checkpoints); if it did, the error says why.
module.exports = new Proxy(
  {},
  {
    get(_, name) {
      if (name === '__esModule' || name === 'default' || typeof name === 'symbol') return undefined;
      return () => {
        throw new Error(`${String(name)}: Node built-in modules are not available in the browser build`);
      };
    },
  },
);
