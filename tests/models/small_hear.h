#pragma once
// A HEAR classifier small enough for unit tests: width 16, 2 layers, windows of 12 patches with an
// overlap of 4 (so a clip of a second uses several windows), 3 classes.
#include "hear/models/hear_classifier.h"

namespace hear::models::model_testing {

inline HearClassifierOptions small_hear_options(bool freeze = false, bool spectrum = true) {
  HearClassifierOptions o;
  o.acoustic_model.hidden_size = 16;
  o.acoustic_model.intermediate_size = 32;
  o.acoustic_model.num_attention_heads = 2;
  o.acoustic_model.num_transformer_layers = 2;
  o.acoustic_model.max_length = 12;
  o.acoustic_model.overlap = 4;
  o.task_model.hidden_size = 16;
  o.task_model.intermediate_size = 32;
  o.task_model.num_attention_heads = 2;
  o.task_model.max_length = 64;
  o.decoder.hidden_size = 8;
  o.decoder.num_classes = 3;
  o.use_spectrogram = spectrum;
  o.freeze_acoustic_model = freeze;
  return o;
}

}  // namespace hear::models::model_testing
