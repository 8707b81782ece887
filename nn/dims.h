/* nn/dims.h: the dimension letters of seqlite, written once; every shape comment uses them.
 *   B batch rows          S source length       T time steps (target length where both appear)
 *   E embedding width     H hidden width        G = 4H gate rows, gate order i f g o
 *   I input width of one LSTM layer (E for layer 0, H above)
 *   L layers              V vocabulary          K beam width
 *   M rows advanced together while decoding (B, or B·K in beam search)
 *   N rows of a flattened batch (for example T·B)
 * Sequence tensors are time-major, (T, B, ·), and row-major; token ids arrive batch-major, (B, T).
 * Token ids and lengths are int32_t; sizes and offsets are size_t.
 * ref: karpathy/llm.c train_gpt2.c (shape comments on every tensor pointer). */
#ifndef SL_NN_DIMS_H
#define SL_NN_DIMS_H

/* The most LSTM layers a stack may have (fixed so per-layer pointers live in structs). */
#define NN_MAX_LAYERS 8

#endif
