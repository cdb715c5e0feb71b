'use strict';

module.exports = async () => {
  if (globalThis.__FERRETDB__) await globalThis.__FERRETDB__.stop();
};
