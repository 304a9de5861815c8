// Stores of channels and signed balances. The chain is the authority on channels and the
// server on the last balance it accepted: a store saves round trips, and a payer that lost
// it finds its channels again from the contract's events and resynchronizes each balance
// from the server's 402. A store is any object with these four methods, synchronous or
// returning promises; values are strings (JSON), keys start with the payer's prefix.

/**
 * @typedef {object} Store
 * @property {(key: string) => string | null | undefined | Promise<string | null | undefined>} get
 * @property {(key: string, value: string) => unknown} set written before a balance it records is sent
 * @property {(key: string) => unknown} delete
 * @property {(prefix: string) => string[] | Promise<string[]>} keys the keys that start with prefix
 */

/**
 * A store in memory: lost with the process (the default).
 * @returns {Store}
 */
export function memoryStore() {
  /** @type {Map<string, string>} */
  const m = new Map();
  return {
    get: (key) => m.get(key),
    set: (key, value) => { m.set(key, value); },
    delete: (key) => { m.delete(key); },
    keys: (prefix) => [...m.keys()].filter((k) => k.startsWith(prefix)),
  };
}

/**
 * A store in a Web Storage object: the browser's localStorage by default, kept across page
 * loads and shared by the pages of one origin.
 * @param {Storage} [storage]
 * @returns {Store}
 */
export function localStorageStore(storage = globalThis.localStorage) {
  if (!storage) throw new TypeError('localStorageStore: no localStorage here (a browser has one; in node use memoryStore or your own)');
  return {
    get: (key) => storage.getItem(key),
    set: (key, value) => storage.setItem(key, value),
    delete: (key) => storage.removeItem(key),
    keys: (prefix) => {
      const out = [];
      for (let i = 0; i < storage.length; i++) {
        const k = storage.key(i);
        if (k !== null && k.startsWith(prefix)) out.push(k);
      }
      return out;
    },
  };
}
