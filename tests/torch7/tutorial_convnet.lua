-- The convnet of Torch7's supervised-learning tutorial (2_model.lua,
-- model "convnet"), smaller: two stages of filter bank, Tanh, L2 pooling
-- (SpatialLPPooling) and local subtractive normalisation with a Gaussian
-- kernel from the image package; the filter banks are SpatialConvolutionMap
-- with connection tables, as the tutorial's first version wrote them
-- (nn.tables.random there: graphc reproduces full and oneToOne only).
require 'torch'
require 'image'
require 'nn'
require 'optim'

local nfeats, width, height = 3, 32, 32
local noutputs = 10
local nstates = {6, 12, 32}
local filtsize, poolsize = 5, 2
local normkernel = image.gaussian1D(7)

model = nn.Sequential()
-- stage 1: filter bank -> squashing -> L2 pooling -> normalization
model:add(nn.SpatialConvolutionMap(nn.tables.full(nfeats, nstates[1]), filtsize, filtsize))
model:add(nn.Tanh())
model:add(nn.SpatialLPPooling(nstates[1], 2, poolsize, poolsize, poolsize, poolsize))
model:add(nn.SpatialSubtractiveNormalization(nstates[1], normkernel))
-- stage 2: the same, one map per plane then all planes to all
model:add(nn.SpatialConvolutionMap(nn.tables.oneToOne(nstates[1]), 3, 3))
model:add(nn.SpatialConvolutionMap(nn.tables.full(nstates[1], nstates[2]), 3, 3))
model:add(nn.Tanh())
model:add(nn.SpatialLPPooling(nstates[2], 2, poolsize, poolsize, poolsize, poolsize))
model:add(nn.SpatialSubtractiveNormalization(nstates[2], normkernel))
-- stage 3: standard 2-layer neural network
model:add(nn.Reshape(nstates[2] * 5 * 5))
model:add(nn.Linear(nstates[2] * 5 * 5, nstates[3]))
model:add(nn.Tanh())
model:add(nn.Linear(nstates[3], noutputs))
model:add(nn.LogSoftMax())

criterion = nn.ClassNLLCriterion()
optimizer = optim.sgd
config = {learningRate = 1e-3, weightDecay = 0, momentum = 0, learningRateDecay = 1e-7}
input = {nfeats, height, width}
