const fs=require('fs'); const dir=process.argv[2]; const mode=process.argv[3];
const p=JSON.parse(fs.readFileSync(fs.readdirSync(dir).filter(f=>f.endsWith('.cpuprofile')).map(f=>dir+'/'+f)[0]));
const dt=p.timeDeltas; const idx=new Map(p.nodes.map((n)=>[n.id,n]));
const counts=new Map(); p.samples.forEach((s,i)=>counts.set(s,(counts.get(s)||0)+(dt[i]||0)));
const agg=new Map(); for(const [id,t] of counts){const n=idx.get(id); let u=n.callFrame.url; let k = mode==='fn' ? n.callFrame.functionName+' '+u.split('/').slice(-2).join('/')+':'+n.callFrame.lineNumber : (u.includes('node_modules/') ? u.split('node_modules/')[1].split('/')[0] : u.includes('/src/') ? 'src/'+u.split('/src/')[1] : (u||n.callFrame.functionName)); agg.set(k,(agg.get(k)||0)+t);}
const tot=[...agg.values()].reduce((a,b)=>a+b,0);
[...agg].sort((a,b)=>b[1]-a[1]).slice(0,18).forEach(([k,t])=>console.log((t/tot*100).toFixed(1)+'%',k));
