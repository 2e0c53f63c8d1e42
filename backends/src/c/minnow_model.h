/* minnow_model.h: the stable interface of every C model minnow generates, ABI version 1.
 *
 * Each generated NAME.h declares NAME_run, NAME_reset and the NAME_* size macros, and also
 * `extern const minnow_model NAME_model;`, a descriptor through which a runtime that embeds
 * several models drives any of them without knowing its name at compile time:
 *
 *   const minnow_model *m = &kws_model;
 *   static uint8_t arena[KWS_ARENA_BYTES] __attribute__((aligned(8)));
 *   m->reset(arena);                          once, before the first inference
 *   m->run(inputs, outputs, arena);           inputs[i]: m->input_bytes[i] bytes, etc.
 *
 * Tensors are raw little-endian bytes in the model's own layout. The arena is aligned to 8
 * bytes and holds the model's activations and recurrent state; nothing allocates and nothing
 * global is written. run returns 0, or 1 if a pointer is null. Version 1 is frozen: a later
 * version only appends fields and raises abi_version. Unused descriptors cost no flash when
 * linked with -Wl,--gc-sections. */
#ifndef MINNOW_MODEL_H
#define MINNOW_MODEL_H

#include <stdint.h>

#define MINNOW_ABI_VERSION 1u

#ifdef __cplusplus
extern "C" {
#endif

typedef struct minnow_model {
  uint32_t abi_version;        /* MINNOW_ABI_VERSION of the code that made it */
  const char *name;            /* NAME */
  uint32_t arena_bytes;        /* NAME_ARENA_BYTES */
  uint32_t num_inputs;         /* NAME_NUM_INPUTS */
  uint32_t num_outputs;        /* NAME_NUM_OUTPUTS */
  uint32_t num_layers;         /* NAME_NUM_LAYERS */
  const uint32_t *input_bytes; /* NAME_INPUT_<i>_BYTES, num_inputs of them */
  const uint32_t *output_bytes;/* NAME_OUTPUT_<i>_BYTES, num_outputs of them */
  int (*run)(const void *const *inputs, void *const *outputs, uint8_t *arena);
  void (*reset)(uint8_t *arena);
} minnow_model;

#ifdef __cplusplus
}
#endif

#endif /* MINNOW_MODEL_H */
