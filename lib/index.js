'use strict';

const { AssetRepository } = require('./repository');
const errors = require('./errors');

module.exports = {
  AssetRepository,
  AssetError: errors.AssetError,
  ValidationError: errors.ValidationError,
  VersionConflictError: errors.VersionConflictError,
  DuplicateKeyError: errors.DuplicateKeyError,
  ServerError: errors.ServerError,
  ConnectionError: errors.ConnectionError,
  IndexError: errors.IndexError,
  RepositoryClosedError: errors.RepositoryClosedError,
  BatchError: errors.BatchError,
  OutcomeUnknownError: errors.OutcomeUnknownError,
};
