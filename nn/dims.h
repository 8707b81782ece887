/* nn/dims.h: the dimension letters of seqlite, written once; every shape comment uses them.
 *   B  batch rows            S  source length (tokens, EOS included when the run appends one)
 *   T  target length in tokens, BOS and EOS not counted (struct batch, struct s2s_batch, decoded
 *      hypotheses); kernels over any sequence (nn/lstm.h, nn/stack.h) call its steps T: S for the
 *      encoder, T1 for the decoder
 *   T1 = T + 1 decoder steps of teacher forcing: inputs BOS y_1..y_T, labels y_1..y_T EOS
 *   E  embedding width       H  hidden width          G = 4H gate rows, gate order i f g o
 *   I  input width of one LSTM layer (E for layer 0, H above)
 *   L  layers                V  vocabulary            K  beam width, and nothing else
 *   M  rows advanced together while decoding (B, or B·K in beam search)
 *   N  rows of a flattened batch (for example T1·B)
 * Other counts and limits get words: n_shards, n_threads, n_params, max_len (a decoding length limit,
 * in steps, EOS included). GEMM shapes (nn/gemm.h) use BLAS's lower-case m, n, k:
 * C (m, n) = A (m, k) · B (k, n).
 * Sequence tensors are time-major, (T, B, ·), and row-major; token ids arrive batch-major, (B, T).
 * Token ids and lengths are int32_t; sizes and offsets are size_t. The special ids: tokenizer/special.h.
 * ref: karpathy/llm.c train_gpt2.c (shape comments on every tensor pointer). */
#ifndef SL_NN_DIMS_H
#define SL_NN_DIMS_H

/* The most LSTM layers a stack may have (fixed so per-layer pointers live in structs). */
#define NN_MAX_LAYERS 8

#endif
