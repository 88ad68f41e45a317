-- A small ResNet for 1x28x28 inputs, built as fb.resnet's models/resnet.lua
-- builds one: basic blocks of two 3x3 convolutions added to a shortcut
-- (nn.Identity, or a strided 1x1 convolution where the shape changes) through
-- nn.ConcatTable and nn.CAddTable, made by helper functions in a loop.
require 'nn'
require 'cunn'
require 'cudnn'

local Convolution = cudnn.SpatialConvolution
local ReLU = cudnn.ReLU
local Max = nn.SpatialMaxPooling

opt = opt or {widths = {4, 8}, blocks = 2, residualScale = 0.5}

-- The shortcut: the identity where the shape stays, else a projection.
local function shortcut(nInputPlane, nOutputPlane, stride)
  if nInputPlane == nOutputPlane and stride == 1 then
    return nn.Identity()
  end
  return nn.Sequential()
    :add(Convolution(nInputPlane, nOutputPlane, 1, 1, stride, stride))
end

local function basicblock(nInputPlane, n, stride)
  local s = nn.Sequential()
  s:add(Convolution(nInputPlane, n, 3, 3, stride, stride, 1, 1))
  s:add(ReLU(true))
  s:add(Convolution(n, n, 3, 3, 1, 1, 1, 1))
  s:add(nn.MulConstant(opt.residualScale, true))

  return nn.Sequential()
    :add(nn.ConcatTable()
      :add(s)
      :add(shortcut(nInputPlane, n, stride)))
    :add(nn.CAddTable(true))
    :add(nn.Threshold(0, 0, true)) -- Torch7's ReLU is Threshold(0, 0)
end

-- Several blocks; the first may change the width and stride.
local function layer(block, nInputPlane, features, count, stride)
  local s = nn.Sequential()
  for i = 1, count do
    s:add(block(i == 1 and nInputPlane or features, features, i == 1 and stride or 1))
  end
  return s
end

local model = nn.Sequential()
model:add(Convolution(1, 4, 3, 3, 1, 1, 1, 1))
model:add(nn.Threshold())
model:add(Max(2, 2, 2, 2))
local planes = 4
for i, width in ipairs(opt.widths) do
  model:add(layer(basicblock, planes, width, opt.blocks, i == 1 and 1 or 2))
  planes = width
end
model:add(cudnn.SpatialAveragePooling(7, 7, 1, 1))
model:add(nn.View(planes):setNumInputDims(3))
model:add(nn.Linear(planes, 10))
model:add(nn.LogSoftMax())
model:cuda()

input = {1, 28, 28}
criterion = nn.ClassNLLCriterion()
optimizer = optim.sgd
optimState = {learningRate = 0.05, momentum = 0.9, weightDecay = 1e-4}

return model
