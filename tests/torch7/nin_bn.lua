-- cifar.torch's Network-in-Network (models/nin.lua) at a suite's size: each
-- block a spatial convolution and two 1x1 "mlpconv" layers, every one
-- followed by SpatialBatchNormalization and ReLU; max and average pooling
-- with :ceil() (each adds a last window: 32 -> 16 -> 8, where floor mode
-- gives 15 and 7), Dropout, and global average pooling into the classes.
require 'nn'

local model = nn.Sequential()

local function Block(...)
  local arg = {...}
  model:add(nn.SpatialConvolution(...))
  model:add(nn.SpatialBatchNormalization(arg[2], 1e-3))
  model:add(nn.ReLU(true))
  return model
end

Block(3, 16, 5, 5, 1, 1, 2, 2)
Block(16, 12, 1, 1)
Block(12, 8, 1, 1)
model:add(nn.SpatialMaxPooling(3, 3, 2, 2):ceil())
model:add(nn.Dropout())
Block(8, 16, 5, 5, 1, 1, 2, 2)
Block(16, 16, 1, 1)
Block(16, 16, 1, 1)
model:add(nn.SpatialAveragePooling(3, 3, 2, 2):ceil())
model:add(nn.Dropout())
Block(16, 16, 3, 3, 1, 1, 1, 1)
Block(16, 16, 1, 1)
Block(16, 10, 1, 1)
model:add(nn.SpatialAveragePooling(8, 8, 1, 1):ceil())
model:add(nn.View(10))

for _, v in pairs(model:findModules('nn.SpatialConvolution')) do
  v.weight:normal(0, 0.05)
  v.bias:zero()
end

input = {3, 32, 32}
criterion = nn.CrossEntropyCriterion()
optimizer = optim.sgd
optimState = {learningRate = 0.1, weightDecay = 5e-4, momentum = 0.9}

return model
