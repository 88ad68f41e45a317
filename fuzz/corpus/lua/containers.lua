-- Container surgery as scripts do it: :insert, :remove, :get, :size,
-- modules, :training()/:evaluate(), :findModules, and a local helper module
-- loaded with require from the model's own folder.
require 'nn'
local blocks = require 'blocks'

model = nn.Sequential()
model:add(nn.View(28 * 28))
model:add(nn.Linear(28 * 28, 48))
model:add(nn.Sigmoid())
model:add(nn.Linear(48, 10))
model:insert(nn.Dropout(0.1), 3)            -- after the first Linear
model:add(nn.Tanh())
model:remove()                              -- the Tanh again
model:remove(4)                             -- the Sigmoid
model:insert(blocks.activation('relu'), 4)
assert(model:size() == 5, 'expected 5 layers, got ' .. model:size())
assert(#model.modules == model:size())
assert(torch.type(model:get(2)) == 'nn.Linear')
assert(#model:findModules('nn.Linear') == 2)
model:add(blocks.head(10))
model:training()
model:evaluate()
model:training()

criterion = nn.ClassNLLCriterion()
optimizer = optim.sgd
config = {learningRate = 0.1, weightDecay = 5e-4}
model = model:float()
