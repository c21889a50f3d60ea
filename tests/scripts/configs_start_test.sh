#!/usr/bin/env bash
# Every shipped config starts: each file of configs/ (paper sizes and tiny ones) is loaded as it is,
# shrunk by overrides to a tiny model and a generated manifest, and its program runs one step (one
# epoch of one batch for fine-tuning). Catches configs that no longer parse, validate or start.
source "$(dirname "$0")/lib.sh"

py "$SRC/scripts/make_synthetic_dataset.py" data --per-class 5 --max-seconds 2 --unlabeled 4 --seed 3
cat data/train.tsv data/unlabeled.tsv > data/corpus.tsv
common=(train.steps=1 train.log_every=1 train.threads=1 data.loader.num_workers=0)
tok_model=(model.tokenizer.hidden_size=32 model.tokenizer.intermediate_size=64
  model.tokenizer.num_attention_heads=4 model.tokenizer.num_transformer_layers=1
  model.tokenizer.num_codebooks=64)

for cfg in tokenizer tokenizer_tiny reproduce/cpu/tokenizer; do
  echo "== configs/$cfg.yaml =="
  "$BIN/hear-tokenizer-train" --config "$SRC/configs/$cfg.yaml" run_dir="tok_${cfg//\//_}" "${common[@]}" \
    "${tok_model[@]}" model.decoder.hidden_size=32 model.decoder.intermediate_size=64 \
    model.decoder.num_attention_heads=4 model.decoder.num_transformer_layers=1 \
    model.decoder.code_vector_size=8 teacher.kind=none data.train_manifest=data/corpus.tsv \
    data.loader.sampler.batch_size=2 > tok.log 2>&1 || { cat tok.log; fail "$cfg.yaml"; }
  [ -f "tok_${cfg//\//_}/tokenizer.safetensors" ] || fail "$cfg.yaml: no tokenizer export"
done

for cfg in pretrain pretrain_tiny reproduce/cpu/pretrain; do
  echo "== configs/$cfg.yaml =="
  "$BIN/hear-pretrain" --config "$SRC/configs/$cfg.yaml" run_dir="mam_${cfg//\//_}" "${common[@]}" \
    "${tok_model[@]}" model.encoder.hidden_size=32 model.encoder.intermediate_size=64 \
    model.encoder.num_attention_heads=4 model.encoder.num_transformer_layers=1 \
    tokenizer_weights=tok_tokenizer/tokenizer.safetensors data.train_manifest=data/corpus.tsv \
    data.loader.sampler.batch_size=2 > mam.log 2>&1 || { cat mam.log; fail "$cfg.yaml"; }
  [ -f "mam_${cfg//\//_}/acoustic_model.safetensors" ] || fail "$cfg.yaml: no acoustic model export"
done
# pretrain_tiny.yaml validates: with a validation manifest it selects `best` by valid_loss.
"$BIN/hear-pretrain" --config "$SRC/configs/pretrain_tiny.yaml" run_dir=mam_valid "${common[@]}" \
  "${tok_model[@]}" model.encoder.hidden_size=32 model.encoder.intermediate_size=64 \
  model.encoder.num_attention_heads=4 model.encoder.num_transformer_layers=1 train.validate_every=1 \
  tokenizer_weights=tok_tokenizer/tokenizer.safetensors data.train_manifest=data/corpus.tsv \
  data.valid_manifest=data/valid.tsv data.loader.sampler.batch_size=2 > mam_valid.log 2>&1 ||
  { cat mam_valid.log; fail "pretrain_tiny.yaml with validation"; }
[ -d mam_valid/checkpoints/best ] || fail "pretrain_tiny.yaml: no best checkpoint with validation"

for cfg in finetune_tiny finetune/esc50 finetune/gscv1 finetune/gscv2 finetune/voxceleb \
           finetune/local/esc_local_small finetune/local/kws_local_small reproduce/cpu/finetune; do
  echo "== configs/$cfg.yaml =="
  name=${cfg//\//_}
  "$BIN/hear-finetune" --config "$SRC/configs/$cfg.yaml" run_dir="ft_$name" epochs=1 \
    train.threads=1 data.loader.num_workers=0 data.format=manifest data.root= data.protocol= \
    data.test_root= "data.test_folds=[]" data.train_manifest=data/train.tsv \
    data.valid_manifest=data/valid.tsv data.test_manifest=data/test.tsv \
    data.loader.sampler.batch_size=16 model.decoder.num_classes=0 \
    model.acoustic_model.hidden_size=32 model.acoustic_model.intermediate_size=64 \
    model.acoustic_model.num_attention_heads=4 model.acoustic_model.num_transformer_layers=1 \
    model.task_model.hidden_size=32 model.task_model.intermediate_size=64 \
    model.task_model.num_attention_heads=4 model.decoder.hidden_size=16 \
    pretrained=mam_pretrain/acoustic_model.safetensors > "ft_$name.log" 2>&1 ||
    { cat "ft_$name.log"; fail "$cfg.yaml"; }
  [ -f "ft_$name/test.json" ] || fail "$cfg.yaml: no test.json"
done

echo "== configs/hear_tiny.yaml =="
"$BIN/hear-bench" --config "$SRC/configs/hear_tiny.yaml" --seconds 2 --no-timing > bench.txt 2>&1 ||
  { cat bench.txt; fail "hear_tiny.yaml"; }
echo "== configs/reproduce/cpu/model.yaml =="
"$BIN/hear-bench" --config "$SRC/configs/reproduce/cpu/model.yaml" --seconds 2 --no-timing > bench.txt 2>&1 ||
  { cat bench.txt; fail "reproduce/cpu/model.yaml"; }
# A config added to configs/ must be added above.
covered="tokenizer tokenizer_tiny pretrain pretrain_tiny finetune_tiny finetune/esc50 finetune/gscv1
  finetune/gscv2 finetune/voxceleb finetune/local/esc_local_small finetune/local/kws_local_small hear_tiny
  reproduce/cpu/tokenizer reproduce/cpu/pretrain reproduce/cpu/finetune reproduce/cpu/model"
for f in $(cd "$SRC/configs" && find . -name '*.yaml' | sed 's|^\./||; s|\.yaml$||'); do
  echo " $covered " | tr '\n' ' ' | grep -q " $f " || fail "configs/$f.yaml is not started by this test"
done
echo "configs_start_test: every config in configs/ started"
