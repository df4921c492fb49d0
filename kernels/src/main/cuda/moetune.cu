// The single translation unit nvcc compiles into moetune.fatbin: every op family's file.
// (One unit gives one fatbin for cuModuleLoadData; the files stay one op family each.)
#include "elementwise.cu"
#include "embedding.cu"
#include "rmsnorm.cu"
#include "rope.cu"
#include "attention.cu"
#include "router.cu"
#include "scatter2scatter.cu"
#include "group.cu"
#include "groupxty.cu"
#include "swiglu.cu"
#include "loss.cu"
#include "adamw.cu"
