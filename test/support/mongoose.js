'use strict';

// The Mongoose major the model-mode and drop-in suites run under:
// AAV_MONGOOSE=8 for Mongoose 8 (the devDependency "mongoose8", an npm
// alias), else 9 (the devDependency "mongoose", which the example service
// uses too). CI runs those suites under both.
const major = process.env.AAV_MONGOOSE === '8' ? '8' : '9';
const mongoose = major === '8' ? require('mongoose8') : require('mongoose');

if (mongoose.version.split('.')[0] !== major) throw new Error(`expected Mongoose ${major}, loaded ${mongoose.version}`);

module.exports = mongoose;
module.exports.major = major;
