-- A helper module for containers.lua: required from the model's folder.
local blocks = {}

function blocks.activation(kind)
  if kind == 'relu' then return nn.ReLU() end
  return nn.Tanh()
end

function blocks.head(...)
  local n = select('#', ...)
  assert(n == 1, 'head takes the number of classes')
  return nn.LogSoftMax()
end

return blocks
