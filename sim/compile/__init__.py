"""Compiling: a golden model onto the core. The compiler (``compiler``) maps each layer onto a
dataflow route (``sim.routes``) and emits the controller's micro-op programs with the assembler
(``asm``), the memory images and the tables; ``layer_stages`` maps standalone pooling, global
average pooling and residual additions; ``grouped`` maps grouped and depthwise adder and multiply
convolutions; ``weight_stream`` streams a layer's weights through the buffer when they do not
fit; ``dima_map`` is the compiler half of DIMA's binarized convolutions and ``nand_postproc``
builds NAND-SPIN's in-memory post-processing programs.
"""
