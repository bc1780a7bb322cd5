"""Train the default model's SentencePiece BPE vocabulary with Debian's
`spm_train` (package `sentencepiece`).

The settings make a tokenizer of the same kind as Llama 2's: BPE, byte
fallback (pieces <0x00>..<0xFF>), <unk>=0, <s>=1, </s>=2, no padding piece,
a dummy-prefix space, identity normalisation, whitespace kept as is, digits
split. spm_train reads its input line by line, so no piece holds a newline:
a newline is encoded as the byte piece <0x0A>, as in Llama.

Training is single-threaded and reads every line in file order (no sampling,
no shuffling), so the same input gives the same model, byte for byte.

Usage: python3 train_tokenizer.py --input TRAIN.txt --prefix OUT [--vocab N]
       (writes OUT.model and OUT.vocab)
"""

import argparse
import os
import subprocess
import sys

import sentencepiece as spm


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()

    # spm_train records its input and output paths in the model file; run it
    # in the input's folder with relative paths so the bytes do not depend on
    # where the repository lives.
    cwd = os.path.dirname(os.path.abspath(args.input))
    cmd = [
        "spm_train",
        f"--input={os.path.basename(args.input)}",
        f"--model_prefix={os.path.relpath(os.path.abspath(args.prefix), cwd)}",
        "--model_type=bpe",
        f"--vocab_size={args.vocab}",
        "--byte_fallback=true",
        "--character_coverage=0.9999",
        "--split_digits=true",
        "--split_by_unicode_script=true",
        "--split_by_number=true",
        "--allow_whitespace_only_pieces=true",
        "--normalization_rule_name=identity",
        "--remove_extra_whitespaces=false",
        "--add_dummy_prefix=true",
        "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1",
        "--unk_surface= \u2047 ",
        "--num_threads=1",
        "--input_sentence_size=0",
        "--shuffle_input_sentence=false",
        "--max_sentence_length=4192",
        "--minloglevel=1",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.exit(f"train_tokenizer: spm_train failed ({r.returncode})")

    sp = spm.SentencePieceProcessor(model_file=args.prefix + ".model")
    # Check the Llama-like layout the exporters and the C engine rely on.
    assert sp.vocab_size() == args.vocab, sp.vocab_size()
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    for b in range(256):
        assert sp.id_to_piece(3 + b) == f"<0x{b:02X}>", (b, sp.id_to_piece(3 + b))
    assert sp.encode("a\nb", out_type=str) == ["\u2581a", "<0x0A>", "b"], \
        "newline should be the byte piece <0x0A>"
    print(f"train_tokenizer: {args.prefix}.model, {sp.vocab_size()} pieces")


if __name__ == "__main__":
    main()
