"""Prototype: a GRU step as the ONNX GRU operator vs as MatMul nodes (fp32 and int8 after
quantize_dynamic), at batch 1 and 1,024 streams, one and two threads. Random weights.

    .venv/bin/python benchmarks/gru_matmul.py

onnxruntime has no quantized GRU kernel; the MatMul form is what quantization can reach.
Prints the median latency per call and the max abs difference from the GRU operator.
"""
import io, tempfile, time, numpy as np, torch, onnx, onnxruntime as ort
from torch import nn
from onnxruntime.quantization import quantize_dynamic, QuantType
torch.manual_seed(0)
E,H,V=128,128,20000
gru = nn.GRU(E,H,batch_first=True)
class OpStep(nn.Module):
    def __init__(s): super().__init__(); s.g=gru
    def forward(s,x,h):
        o,hn=s.g(x[:,None],h); return hn
class MMStep(nn.Module):
    def __init__(s):
        super().__init__()
        s.ih=nn.Linear(E,3*H); s.hh=nn.Linear(H,3*H)
        s.ih.weight.data=gru.weight_ih_l0.data.clone(); s.ih.bias.data=gru.bias_ih_l0.data.clone()
        s.hh.weight.data=gru.weight_hh_l0.data.clone(); s.hh.bias.data=gru.bias_hh_l0.data.clone()
    def forward(s,x,h):
        h0=h[0]; gi=s.ih(x); gh=s.hh(h0)
        ir,iz,inn=gi.chunk(3,1); hr,hz,hn=gh.chunk(3,1)
        r=torch.sigmoid(ir+hr); z=torch.sigmoid(iz+hz); n=torch.tanh(inn+r*hn)
        return ((1-z)*n+z*h0)[None]
def exp(m):
    b=io.BytesIO()
    torch.onnx.export(m,(torch.zeros(2,E),torch.zeros(1,2,H)),b,dynamo=False,opset_version=17,input_names=["x","h"],output_names=["h_next"],dynamic_axes={"x":{0:"b"},"h":{1:"b"},"h_next":{1:"b"}})
    return b.getvalue()
def q(data):
    with tempfile.TemporaryDirectory() as d:
        open(f"{d}/m.onnx", "wb").write(data)
        quantize_dynamic(f"{d}/m.onnx", f"{d}/mq.onnx", weight_type=QuantType.QInt8)
        return open(f"{d}/mq.onnx", "rb").read()
graphs={"op fp32":exp(OpStep()),"mm fp32":exp(MMStep())}
graphs["mm int8"]=q(graphs["mm fp32"])
graphs["op int8"]=q(graphs["op fp32"])
print({k:[n.op_type for n in onnx.load_from_string(v).graph.node][:12] for k,v in graphs.items() if 'int8' in k})
def sess(d,t):
    o=ort.SessionOptions(); o.intra_op_num_threads=t; return ort.InferenceSession(d,o,providers=["CPUExecutionProvider"])
for B,t in ((1,1),(1024,1),(1024,2)):
    x=np.random.randn(B,E).astype(np.float32); h=np.random.randn(1,B,H).astype(np.float32)*.5
    ref=None
    for k,d in graphs.items():
        s=sess(d,t)
        for _ in range(20): out=s.run(None,{"x":x,"h":h})[0]
        n=2000 if B==1 else 50
        ts=[]
        for _ in range(n):
            t0=time.perf_counter_ns(); s.run(None,{"x":x,"h":h}); ts.append(time.perf_counter_ns()-t0)
        if ref is None: ref=out
        print(B,t,k,f"{np.median(ts)/1000:.1f}us err {np.abs(out-ref).max():.1e}")
