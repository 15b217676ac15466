// cairn/infer/constraint.h — constraints on what a generation may produce.
//
// A TokenConstraint is consulted at every sampling step of one sequence: Apply
// masks (sets to -infinity) the logits of every token that cannot come next, the
// sampler picks among the rest, and Accept advances the constraint's state by the
// token that was picked. Complete() tells when the text so far is a whole value,
// at which point the generation ends (finish reason "stop"); until then the
// end-of-generation tokens stay masked, so a constrained output always parses.
//
// The JSON constraint (response_format json_object / json_schema in the OpenAI
// API) is built from the model's vocabulary once per request. A schema feature
// the constraint cannot enforce is rejected when it is built (InvalidArgument
// naming the keyword), never silently ignored; json_schema.h lists the supported
// keywords and what is generated for them (properties in the order of the schema's
// "properties" object, which nlohmann::json keeps sorted by name; required ones
// always present; bounded whitespace).
//
// Masking walks a trie of the vocabulary's byte strings (TokenToPiece) against the
// JSON recognizer's state, dropping a whole subtree at the first byte that cannot
// come next. Control, unknown and unused tokens are always masked; end-of-generation
// tokens are allowed exactly when the text so far could end (a whole value). For an
// object, array, string or literal, Complete() turns true with its last byte; a
// top-level number has no last byte, so it ends with an end-of-generation token.
//
// Thread-safety: one constraint belongs to one sequence; distinct constraints
// may be used on different threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cairn::infer {

class Tokenizer;

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets logits[t] = -infinity for every token t that may not come next.
  // logits.size() is the model's vocabulary size.
  virtual void Apply(std::span<float> logits) = 0;
  // Advances by `token`; InvalidArgument when Apply would have masked it.
  virtual absl::Status Accept(int32_t token) = 0;
  // True when the output so far is a complete value that nothing may follow (or an
  // end-of-generation token was accepted after a complete value).
  virtual bool Complete() const = 0;
};

// A constraint that admits exactly the JSON texts matching `schema`; a null
// `schema` admits any JSON object (response_format {"type": "json_object"}).
// The tokenizer must outlive the constraint.
absl::StatusOr<std::unique_ptr<TokenConstraint>> MakeJsonConstraint(const Tokenizer& tokenizer,
                                                                    const nlohmann::json& schema);

}  // namespace cairn::infer
