ggml-vocab-llama-spm.gguf and ggml-vocab-bert-bge.gguf are vocabulary-only GGUF files
(tokenizer metadata, no tensors) from the llama.cpp repository, directory models/
(https://github.com/ggml-org/llama.cpp), used unchanged under the MIT licence in
LICENSE-llama.cpp.
