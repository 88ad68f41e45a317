-- A convnet in the style of the Torch7 tutorials' 'convnet' model, padding
-- its planes explicitly as scripts written before convolutions took a
-- padding argument did: nn.SpatialZeroPadding in front of each 5x5
-- convolution, an opt table with if/else, and nn.Padding adding a bias
-- feature of ones to the classifier's input.
require 'nn'

local opt = opt or {size = 'small', pad = true}

local nstates = opt.size == 'small' and {8, 16, 32} or {64, 64, 128}
local filtsize, poolsize = 5, 2
local padding = opt.pad and math.floor(filtsize / 2) or 0

model = nn.Sequential()
for stage = 1, 2 do
  local nIn = stage == 1 and 1 or nstates[stage - 1]
  if padding > 0 then
    model:add(nn.SpatialZeroPadding(padding, padding, padding, padding))
  end
  model:add(nn.SpatialConvolutionMM(nIn, nstates[stage], filtsize, filtsize))
  model:add(nn.ReLU())
  model:add(nn.SpatialMaxPooling(poolsize, poolsize, poolsize, poolsize):ceil())
end

local features = nstates[2] * 7 * 7
model:add(nn.Reshape(features))
model:add(nn.Padding(1, 1, 1, 1)) -- a constant feature of 1 after the others
model:add(nn.Dropout(0.5))
model:add(nn.Linear(features + 1, nstates[3]))
model:add(nn.ReLU())
model:add(nn.Linear(nstates[3], 10))
model:add(nn.LogSoftMax())

criterion = nn.ClassNLLCriterion()
optimizer = optim.sgd
config = {learningRate = 1e-4, momentum = 0.9, nesterov = true, dampening = 0}
input = {1, 28, 28}
