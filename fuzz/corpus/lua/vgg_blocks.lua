-- A small VGG: blocks of 3x3 convolutions built by a helper in a loop, cudnn
-- layers, :cuda() everywhere, and `return model, criterion` at the end.
require 'nn'
require 'cunn'
require 'cudnn'
cudnn.benchmark = true

local cfg = {8, 'M', 16, 16, 'M'}

local function ConvBNReLU(nIn, nOut)
  local block = nn.Sequential()
  block:add(cudnn.SpatialConvolution(nIn, nOut, 3, 3, 1, 1, 1, 1))
  block:add(cudnn.ReLU(true))
  return block
end

local features = nn.Sequential()
local planes = 1
for _, v in ipairs(cfg) do
  if v == 'M' then
    features:add(cudnn.SpatialMaxPooling(2, 2, 2, 2))
  else
    local block = ConvBNReLU(planes, v)
    for i = 1, block:size() do
      features:add(block:get(i))
    end
    planes = v
  end
end

local classifier = nn.Sequential()
classifier:add(nn.View(planes * 7 * 7))
classifier:add(nn.Linear(planes * 7 * 7, 32))
classifier:add(cudnn.ReLU(true))
classifier:add(nn.Linear(32, 10))

local model = nn.Sequential()
for _, part in ipairs({features, classifier}) do
  for i = 1, #part.modules do
    model:add(part.modules[i])
  end
end
model:cuda()
cudnn.convert(model, cudnn)

input = {1, 28, 28}
optimizer = optim.adam
optimConfig = {learningRate = 1e-3, beta1 = 0.9}

return model, nn.CrossEntropyCriterion():cuda()
