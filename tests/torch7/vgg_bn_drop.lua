-- cifar.torch's VGG-BN-Dropout (models/vgg_bn_drop.lua), cut to 3 stages for
-- the suite: conv-BN-ReLU blocks added by a helper that returns the net,
-- Dropout between them, ceil-mode pooling, a BatchNorm classifier, MSR
-- initialisation through findModules, and `return vgg`.
require 'nn'

local vgg = nn.Sequential()

-- building block
local function ConvBNReLU(nInputPlane, nOutputPlane)
  vgg:add(nn.SpatialConvolution(nInputPlane, nOutputPlane, 3,3, 1,1, 1,1))
  vgg:add(nn.SpatialBatchNormalization(nOutputPlane,1e-3))
  vgg:add(nn.ReLU(true))
  return vgg
end

-- Will use "ceil" MaxPooling because we want to save as much feature space as we can
local MaxPooling = nn.SpatialMaxPooling

ConvBNReLU(3,8):add(nn.Dropout(0.3))
ConvBNReLU(8,8)
vgg:add(MaxPooling(2,2,2,2):ceil())

ConvBNReLU(8,16):add(nn.Dropout(0.4))
ConvBNReLU(16,16)
vgg:add(MaxPooling(2,2,2,2):ceil())

ConvBNReLU(16,32):add(nn.Dropout(0.4))
ConvBNReLU(32,32)
vgg:add(MaxPooling(2,2,2,2):ceil())
vgg:add(nn.View(32*4*4))

local classifier = nn.Sequential()
classifier:add(nn.Dropout(0.5))
classifier:add(nn.Linear(32*4*4,32))
classifier:add(nn.BatchNormalization(32))
classifier:add(nn.ReLU(true))
classifier:add(nn.Dropout(0.5))
classifier:add(nn.Linear(32,10))
vgg:add(classifier)

-- initialization from MSR
local function MSRinit(net)
  local function init(name)
    for k,v in pairs(net:findModules(name)) do
      local n = v.kW*v.kH*v.nOutputPlane
      v.weight:normal(0,math.sqrt(2/n))
      v.bias:zero()
    end
  end
  -- have to do for both backends
  init'cudnn.SpatialConvolution'
  init'nn.SpatialConvolution'
end

MSRinit(vgg)

input = {3, 32, 32}
criterion = nn.CrossEntropyCriterion()
optimizer = optim.sgd
optimState = {learningRate = 1, weightDecay = 0.0005, momentum = 0.9, learningRateDecay = 1e-7}

return vgg
