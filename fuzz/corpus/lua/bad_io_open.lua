model = nn.Sequential()
local f = io.open('/etc/passwd')
