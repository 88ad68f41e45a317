-- A model file that returns its builder, as fb.resnet's models/*.lua do:
-- graphc calls it with the options table (here the script's own defaults).
require 'nn'
require 'cudnn'

local Convolution = cudnn.SpatialConvolution
local ReLU = cudnn.ReLU
local Max = nn.SpatialMaxPooling

opt = {nClasses = 10, widths = {4, 8}}

criterion = nn.CrossEntropyCriterion()
optimizer = optim.sgd
optimState = {learningRate = 0.01, momentum = 0.9, weightDecay = 1e-4, nesterov = true,
              dampening = 0.0}

local function createModel(opt)
  local model = nn.Sequential()
  local nIn = 1
  for i, w in ipairs(opt.widths) do
    model:add(Convolution(nIn, w, 3, 3, 1, 1, 1, 1)):add(ReLU(true))
    model:add(Max(2, 2, 2, 2))
    nIn = w
  end
  model:add(nn.View(nIn * 7 * 7):setNumInputDims(3))
  model:add(nn.Linear(nIn * 7 * 7, opt.nClasses))
  model:get(1).gradInput = nil
  return model:cuda()
end

input = {1, 28, 28}
return createModel
