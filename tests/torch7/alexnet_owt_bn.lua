-- imagenet-multiGPU.torch's AlexNet-OWT-BN (models/alexnetowtbn.lua) at a
-- suite's size: a global createModel(nGPU) that builds a features block of
-- strided cudnn convolutions with BatchNorm and a classifier with Dropout and
-- BatchNormalization, wraps the features for the GPUs (here, util.lua's
-- makeDataParallel for one GPU), and sets fields on the model.
require 'nn'
require 'cunn'
require 'cudnn'

local function makeDataParallel(model, nGPU)
  if nGPU > 1 then
    error('this test runs on one GPU')
  end
  return model:cuda()
end

function createModel(nGPU)
  local features = nn.Sequential()
  features:add(cudnn.SpatialConvolution(3, 16, 11, 11, 4, 4, 2, 2)) -- 64 -> 15
  features:add(nn.SpatialBatchNormalization(16, 1e-3))
  features:add(cudnn.ReLU(true))
  features:add(cudnn.SpatialMaxPooling(3, 3, 2, 2))                 -- 15 -> 7
  features:add(cudnn.SpatialConvolution(16, 24, 5, 5, 1, 1, 2, 2))  -- 7 -> 7
  features:add(nn.SpatialBatchNormalization(24, 1e-3))
  features:add(cudnn.ReLU(true))
  features:add(cudnn.SpatialMaxPooling(3, 3, 2, 2))                 -- 7 -> 3
  features:add(cudnn.SpatialConvolution(24, 32, 3, 3, 1, 1, 1, 1))
  features:add(nn.SpatialBatchNormalization(32, 1e-3))
  features:add(cudnn.ReLU(true))
  features:add(cudnn.SpatialConvolution(32, 24, 3, 3, 1, 1, 1, 1))
  features:add(nn.SpatialBatchNormalization(24, 1e-3))
  features:add(cudnn.ReLU(true))
  features:add(cudnn.SpatialMaxPooling(3, 3, 2, 2))                 -- 3 -> 1

  features:get(1).gradInput = nil
  features = makeDataParallel(features, nGPU)

  local classifier = nn.Sequential()
  classifier:add(nn.View(24 * 1 * 1))
  classifier:add(nn.Dropout(0.5))
  classifier:add(nn.Linear(24, 32))
  classifier:add(nn.BatchNormalization(32, 1e-3))
  classifier:add(nn.ReLU())
  classifier:add(nn.Dropout(0.5))
  classifier:add(nn.Linear(32, 32))
  classifier:add(nn.BatchNormalization(32, 1e-3))
  classifier:add(nn.ReLU())
  classifier:add(nn.Linear(32, 10))
  classifier:add(nn.LogSoftMax())
  classifier:cuda()

  local model = nn.Sequential():add(features):add(classifier)
  model.imageSize = 64
  model.imageCrop = 64
  return model
end

model = createModel(1)
criterion = nn.ClassNLLCriterion():cuda()
optimizer = optim.sgd
config = {learningRate = 0.02, learningRateDecay = 0, momentum = 0.9, dampening = 0,
          weightDecay = 5e-4}
input = {3, 64, 64}
