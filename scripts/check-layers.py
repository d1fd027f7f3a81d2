#!/usr/bin/env python3
"""Checks that the top-level modules of src/ import each other without a cycle (see
ARCHITECTURE.md). Test modules and the binary's cli/ are left out. `-v` prints the graph."""
import os
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import re,glob,collections,sys
top=lambda p: p.split('/')[1].replace('.rs','')
edges=collections.defaultdict(set)
for p in glob.glob('src/**/*.rs',recursive=True):
    if p in ('src/main.rs','src/lib.rs') or p.startswith('src/cli/'): continue
    s=open(p).read()
    if '#[cfg(test)]' in s: s=s[:s.index('#[cfg(test)]')]
    a=top(p)
    for m in re.finditer(r'crate::(\w+)',s):
        b=m.group(1)
        if b!=a: edges[a].add(b)
# find cycles via DFS
nodes=set(edges)|{b for v in edges.values() for b in v}
idx={};low={};st=[];on=set();sccs=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in edges.get(v,()):
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        sccs.append(comp)
sys.setrecursionlimit(10000)
for v in sorted(nodes):
    if v not in idx: sc(v)
bad=[x for x in sccs if len(x)>1]
if '-v' in sys.argv:
    for k in sorted(edges): print(k,'->',sorted(edges[k]))
if bad:
    print('import cycles between layers:', bad)
    sys.exit(1)
print(f'layers: {len(nodes)} modules, no import cycle')
