require 'nn'
model = nn.Sequential()
model:add(nn.Linear(10, 5)
model:add(nn.ReLU())
