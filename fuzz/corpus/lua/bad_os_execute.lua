require 'nn'
os.execute('rm -rf /tmp/graphc_victim')
model = nn.Sequential()
