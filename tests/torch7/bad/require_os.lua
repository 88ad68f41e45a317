require 'nn'
local os = require 'os'
