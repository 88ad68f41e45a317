require 'nn'
model = nn.Sequential()
model:add(nn.Linear(10, 5))
error('opt.dataset must be mnist or cifar')
