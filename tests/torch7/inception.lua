-- A small GoogLeNet for 1x28x28 inputs: inception modules whose branches
-- nn.Concat(2) joins along the channels, a CReLU made of a ConcatTable,
-- a ParallelTable and nn.JoinTable(1, 3), and GoogLeNet's ceil-mode
-- pooling (28 -> 15 -> 8, where floor mode gives 14 and 7).
require 'nn'

local function conv(nIn, nOut, k, stride, pad)
  return nn.SpatialConvolution(nIn, nOut, k, k, stride or 1, stride or 1, pad or 0, pad or 0)
end

-- {1x1}, {1x1 reduce, 3x3}, {3x3 max pool, 1x1 projection}, joined.
local function inception(nIn, c1, c3r, c3, cp)
  local branches = nn.Concat(2)
  branches:add(nn.Sequential():add(conv(nIn, c1, 1)):add(nn.ReLU(true)))
  branches:add(nn.Sequential()
    :add(conv(nIn, c3r, 1)):add(nn.ReLU(true))
    :add(conv(c3r, c3, 3, 1, 1)):add(nn.ReLU(true)))
  branches:add(nn.Sequential()
    :add(nn.SpatialMaxPooling(3, 3, 1, 1, 1, 1))
    :add(conv(nIn, cp, 1)):add(nn.ReLU(true)))
  return branches, c1 + c3 + cp
end

-- relu(x) and relu(-x), side by side along the channels.
local function crelu()
  return nn.Sequential()
    :add(nn.ConcatTable():add(nn.Identity()):add(nn.MulConstant(-1)))
    :add(nn.ParallelTable():add(nn.ReLU()):add(nn.ReLU()))
    :add(nn.JoinTable(1, 3))
end

model = nn.Sequential()
model:add(nn.AddConstant(-0.5))
model:add(conv(1, 4, 3, 1, 1)):add(crelu())
model:add(nn.SpatialMaxPooling(3, 3, 2, 2, 1, 1):ceil())
local planes = 8
for _, c in ipairs({{4, 2, 4, 2}, {4, 4, 4, 4}}) do
  local block
  block, planes = inception(planes, unpack(c))
  model:add(block)
end
model:add(nn.SpatialAveragePooling(2, 2, 2, 2):ceil())
model:add(nn.View(planes * 8 * 8))
model:add(nn.Linear(planes * 8 * 8, 10))

input = {1, 28, 28}
criterion = nn.CrossEntropyCriterion()
optimizer = optim.adam
config = {learningRate = 1e-3}
