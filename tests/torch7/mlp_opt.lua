-- An MLP whose shape comes from an `opt` table, as a Torch7 training script
-- passes it (torch.CmdLine in the real thing); defaults when run alone.
require 'nn'
require 'optim'

local opt = opt or {hidden = 64, layers = 2, dropout = 0.2, activation = 'tanh'}
local ninputs = 1 * 28 * 28

local model = nn.Sequential()
model:add(nn.View(ninputs))
local width = ninputs
for i = 1, opt.layers do
  model:add(nn.Linear(width, opt.hidden))
  if opt.activation == 'tanh' then
    model:add(nn.Tanh())
  elseif opt.activation == 'sigmoid' then
    model:add(nn.Sigmoid())
  else
    model:add(nn.ReLU(true))
  end
  if opt.dropout and opt.dropout > 0 then
    model:add(nn.Dropout(opt.dropout))
  end
  width = opt.hidden
end
model:add(nn.Linear(width, 10))
model:add(nn.LogSoftMax())

criterion = nn.ClassNLLCriterion()
optimizer = optim.sgd
config = {learningRate = 0.05, momentum = 0.9, nesterov = true, dampening = 0}

return model
