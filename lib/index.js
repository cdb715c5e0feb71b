'use strict';

const { AssetRepository } = require('./repository');
const errors = require('./errors');

module.exports = {
  AssetRepository,
  ...errors.classes,
};
