#!/usr/bin/env python3
"""Checks the layout ARCHITECTURE.md describes:

1. the top-level modules of src/ import each other without a cycle (test modules and the
   binary's cli/ are left out; `-v` prints the graph);
2. no file of src/ is over MAX_FILE_LINES lines and no function (tests included) over
   MAX_FN_LINES, from its `fn` line to its closing brace (no exceptions: carve it).

The size scan counts braces after blanking comments, strings and char literals. It tests
itself on made-up sources first (a file and a function one line too long, braces inside
strings), so a scan that could no longer fail fails the check."""
import os
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import re,glob,collections,sys,bisect

MAX_FILE_LINES=600
MAX_FN_LINES=80

def blank(src):
    """src with comments, string and char literals blanked (newlines kept)."""
    out=[];i=0;n=len(src)
    def skip(j):
        out.append(re.sub(r'[^\n]',' ',src[i:j])); return j
    while i<n:
        c=src[i]
        if src.startswith('//',i):
            j=src.find('\n',i); i=skip(n if j<0 else j); continue
        if src.startswith('/*',i):
            j=src.find('*/',i+2); i=skip(n if j<0 else j+2); continue
        prev=src[i-1] if i else ' '
        m=re.match(r'b?r(#*)"',src[i:i+40]) if c in 'rb' and not (prev.isalnum() or prev=='_') else None
        if m:
            end='"'+m.group(1); j=src.find(end,i+m.end()); i=skip(n if j<0 else j+len(end)); continue
        if c=='"':
            j=i+1
            while j<n and src[j]!='"': j+=2 if src[j]=='\\' else 1
            i=skip(min(j+1,n)); continue
        if c=="'":
            m=re.match(r"'(\\[^']*|[^\\'])'",src[i:i+12])
            if m: i=skip(i+m.end()); continue
        out.append(c); i+=1
    return ''.join(out)

def functions(src):
    """(name, first line, lines) of every fn with a body in src."""
    s=blank(src); starts=[0]
    for l in s.split('\n'): starts.append(starts[-1]+len(l)+1)
    line=lambda pos: bisect.bisect_right(starts,pos)
    for m in re.finditer(r'\bfn\s+(\w+)',s):
        j=m.end()
        while j<len(s) and s[j] not in '{;': j+=1
        if j>=len(s) or s[j]==';': continue
        depth=0
        for k in range(j,len(s)):
            depth+={'{':1,'}':-1}.get(s[k],0)
            if depth==0: break
        yield m.group(1), line(m.start()), line(k)-line(m.start())+1

def too_long(path,src):
    """What in one file breaks the size rules."""
    bad=[]
    n=src.count('\n')
    if n>MAX_FILE_LINES:
        bad.append(f'{path}: {n} lines (at most {MAX_FILE_LINES}: carve it by idea)')
    for name,at,length in functions(src):
        if length>MAX_FN_LINES:
            bad.append(f'{path}:{at}: fn {name} is {length} lines (at most {MAX_FN_LINES})')
    return bad

def self_test():
    body=lambda k: 'fn f() {\n' + '    let s = "}}{";\n'*(k-2) + '}\n'
    assert too_long('t.rs',body(MAX_FN_LINES))==[], 'a function at the limit passes'
    assert len(too_long('t.rs',body(MAX_FN_LINES+1)))==1, 'a function over the limit fails'
    tricky="fn g() {\n    let c = '}';\n    let r = r#\"}\"#; // }\n    /* } */\n}\n"
    assert [x[2] for x in functions(tricky)]==[5], 'braces in literals and comments do not count'
    assert list(functions('trait T {\n    fn h(&self);\n}\n'))==[], 'a declaration has no body'
    assert too_long('t.rs','\n'*MAX_FILE_LINES)==[], 'a file at the limit passes'
    assert len(too_long('t.rs','\n'*(MAX_FILE_LINES+1)))==1, 'a file over the limit fails'

self_test()
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

sizes=[]
for p in sorted(glob.glob('src/**/*.rs',recursive=True)):
    sizes+=too_long(p,open(p).read())
if sizes:
    print('too long:', *sizes, sep='\n  ')
    sys.exit(1)
print(f'sizes: no file over {MAX_FILE_LINES} lines, no fn over {MAX_FN_LINES}')
