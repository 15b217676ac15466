#include "cairn/infer/json_schema.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "cairn/base/status.h"

namespace cairn::infer::json {
namespace {

using nlohmann::json;

// Keywords that describe a schema without constraining its values.
const std::set<std::string, std::less<>>& Annotations() {
  static const auto* s = new std::set<std::string, std::less<>>{
      "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
      "writeOnly", "$defs", "definitions"};
  return *s;
}

const std::set<std::string, std::less<>>& Supported() {
  static const auto* s = new std::set<std::string, std::less<>>{
      "type",     "nullable", "properties", "required",  "additionalProperties", "enum",  "const", "items",
      "minItems", "maxItems", "minLength",  "maxLength", "anyOf",                "oneOf", "$ref"};
  return *s;
}

JsonGrammar BaseGrammar() {
  JsonGrammar g;
  g.literals = {"true", "false", "null"};
  g.nodes.emplace_back();  // 0: any value; free keys whose values are any, items any
  return g;
}

class Compiler {
 public:
  explicit Compiler(const json& root) : root_(root), g_(BaseGrammar()) {}

  absl::StatusOr<JsonGrammar> Run() {
    absl::StatusOr<int32_t> r = Compile(root_, "");
    if (!r.ok()) return r.status();
    g_.root = *r;
    absl::StatusOr<int> depth = Frames(g_.root, 0);
    if (!depth.ok()) return depth.status();
    if (*depth > kMaxFrames) {
      return absl::InvalidArgumentError(
          fmt::format("json schema: nests too deeply ({} levels; at most {} are supported)", *depth, kMaxFrames));
    }
    return std::move(g_);
  }

 private:
  static absl::Status Error(std::string_view where, std::string_view what) {
    return absl::InvalidArgumentError(fmt::format("json schema: {} (at '{}')", what, where.empty() ? "#" : where));
  }

  // The compact text of `v`; a string that is not UTF-8 (possible in a json built in
  // code, never in one parsed) cannot be written and is an error.
  static absl::StatusOr<std::string> Dump(const json& v, std::string_view where) {
    try {
      return v.dump();
    } catch (const json::exception&) {
      return Error(where, "a name or value is not valid UTF-8");
    }
  }

  int32_t AddLiteral(std::string text) {
    auto it = literal_ids_.find(text);
    if (it != literal_ids_.end()) return it->second;
    const int32_t id = static_cast<int32_t>(g_.literals.size());
    literal_ids_.emplace(text, id);
    g_.literals.push_back(std::move(text));
    return id;
  }

  int32_t NewNode() {
    g_.nodes.emplace_back();
    return static_cast<int32_t>(g_.nodes.size() - 1);
  }

  static absl::StatusOr<int32_t> Count(const json& s, std::string_view key, std::string_view where) {
    const json& v = s.at(std::string(key));
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      return Error(where, fmt::format("{} must be a non-negative integer", key));
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }

  static absl::StatusOr<uint32_t> TypeBit(const json& name, std::string_view where) {
    static const std::map<std::string, uint32_t, std::less<>> kTypes = {
        {"object", kObject}, {"array", kArray},     {"string", kString}, {"number", kNumber | kInteger},
        {"integer", kInteger}, {"boolean", kBoolean}, {"null", kNull}};
    if (name.is_string()) {
      auto it = kTypes.find(name.get<std::string>());
      if (it != kTypes.end()) return it->second;
    }
    return Error(where, fmt::format("unknown type {}", name.dump(-1, ' ', false, json::error_handler_t::replace)));
  }

  absl::StatusOr<int32_t> Resolve(const std::string& ref, std::string_view where) {
    if (ref == "#") return Compile(root_, "");
    for (std::string_view prefix : {"#/$defs/", "#/definitions/"}) {
      if (ref.rfind(prefix, 0) != 0) continue;
      const std::string name = ref.substr(prefix.size());
      const std::string section(prefix.substr(2, prefix.size() - 3));
      if (name.find('/') != std::string::npos || name.find('~') != std::string::npos || !root_.is_object() ||
          !root_.contains(section) || !root_[section].is_object() || !root_[section].contains(name)) {
        return Error(where, fmt::format("$ref '{}' does not resolve", ref));
      }
      return Compile(root_[section][name], ref.substr(1));
    }
    return Error(where, fmt::format("$ref '{}' is not supported (only #, #/$defs/NAME and #/definitions/NAME)", ref));
  }

  absl::StatusOr<int32_t> Compile(const json& s, const std::string& where) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return 0;
      return Error(where, "the schema false admits nothing");
    }
    if (!s.is_object()) return Error(where, "a schema must be an object or a boolean");
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (!Supported().contains(it.key()) && !Annotations().contains(it.key())) {
        return Error(where, fmt::format("keyword '{}' is not supported by constrained decoding", it.key()));
      }
    }

    if (s.contains("$ref")) {
      for (auto it = s.begin(); it != s.end(); ++it) {
        if (it.key() != "$ref" && !Annotations().contains(it.key())) {
          return Error(where, fmt::format("keyword '{}' next to $ref is not supported", it.key()));
        }
      }
      if (!s["$ref"].is_string()) return Error(where, "$ref must be a string");
      const std::string ref = s["$ref"].get<std::string>();
      if (auto done = ref_nodes_.find(ref); done != ref_nodes_.end()) return done->second;
      if (!active_refs_.insert(ref).second) {
        return Error(where, fmt::format("recursive $ref '{}' is not supported", ref));
      }
      absl::StatusOr<int32_t> r = Resolve(ref, where);
      active_refs_.erase(ref);
      if (r.ok()) ref_nodes_[ref] = *r;
      return r;
    }
    if (&s == &root_) {
      // "#" refers to the root: compiling it again from inside would recurse.
      if (!active_refs_.insert("#").second) return Error(where, "recursive $ref '#' is not supported");
    }

    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      for (auto it = s.begin(); it != s.end(); ++it) {
        if (it.key() != key && !Annotations().contains(it.key())) {
          return Error(where, fmt::format("keyword '{}' next to {} is not supported", it.key(), key));
        }
      }
      const json& alts = s[key];
      if (!alts.is_array() || alts.empty()) return Error(where, fmt::format("{} must be a non-empty array", key));
      if (alts.size() > kMaxChoices) {
        return Error(where,
                     fmt::format("{} has {} alternatives; at most {} are supported", key, alts.size(), kMaxChoices));
      }
      std::vector<int32_t> ids;
      for (size_t i = 0; i < alts.size(); ++i) {
        absl::StatusOr<int32_t> a = Compile(alts[i], fmt::format("{}/{}/{}", where, key, i));
        if (!a.ok()) return a.status();
        ids.push_back(*a);
      }
      const int32_t id = NewNode();
      g_.nodes[id].alternatives = std::move(ids);
      return id;
    }

    JsonNode n;
    bool has_type = false;
    if (s.contains("type")) {
      has_type = true;
      n.types = 0;
      const json& t = s["type"];
      if (t.is_array()) {
        if (t.empty()) return Error(where, "type must not be an empty array");
        for (const json& name : t) {
          absl::StatusOr<uint32_t> b = TypeBit(name, where);
          if (!b.ok()) return b.status();
          n.types |= *b;
        }
      } else {
        absl::StatusOr<uint32_t> b = TypeBit(t, where);
        if (!b.ok()) return b.status();
        n.types = *b;
      }
    }
    if (s.contains("nullable")) {
      if (!s["nullable"].is_boolean()) return Error(where, "nullable must be a boolean");
      if (s["nullable"].get<bool>() && has_type) n.types |= kNull;
    }

    if (s.contains("enum") || s.contains("const")) {
      std::vector<json> values;
      if (s.contains("const")) values.push_back(s["const"]);
      if (s.contains("enum")) {
        if (!s["enum"].is_array()) return Error(where, "enum must be an array");
        if (s.contains("const")) return Error(where, "enum next to const is not supported");
        for (const json& v : s["enum"]) values.push_back(v);
      }
      for (const json& v : values) {
        if (has_type && !(n.types & TypeOf(v))) continue;
        absl::StatusOr<std::string> text = Dump(v, where);
        if (!text.ok()) return text.status();
        const int32_t lit = AddLiteral(*std::move(text));
        if (std::find(n.literals.begin(), n.literals.end(), lit) == n.literals.end()) n.literals.push_back(lit);
      }
      if (n.literals.empty()) return Error(where, "no enum/const value has the schema's type");
      if (n.literals.size() > kMaxChoices) {
        return Error(where,
                     fmt::format("enum has {} values; at most {} are supported", n.literals.size(), kMaxChoices));
      }
      const int32_t id = NewNode();
      g_.nodes[id] = std::move(n);
      return id;
    }

    const bool object_keys = s.contains("properties") || s.contains("required") || s.contains("additionalProperties");
    const bool array_keys = s.contains("items") || s.contains("minItems") || s.contains("maxItems");
    const bool string_keys = s.contains("minLength") || s.contains("maxLength");
    if (!has_type && (object_keys || array_keys || string_keys)) {
      n.types = (object_keys ? kObject : 0) | (array_keys ? kArray : 0) | (string_keys ? kString : 0);
    }

    // Objects.
    std::vector<std::string> required;
    if (s.contains("required")) {
      const json& r = s["required"];
      if (!r.is_array()) return Error(where, "required must be an array of strings");
      for (const json& name : r) {
        if (!name.is_string()) return Error(where, "required must be an array of strings");
        if (std::find(required.begin(), required.end(), name.get<std::string>()) == required.end()) {
          required.push_back(name.get<std::string>());
        }
      }
    }
    n.additional = 0;
    if (s.contains("additionalProperties")) {
      const json& a = s["additionalProperties"];
      if (a.is_boolean() && !a.get<bool>()) {
        n.additional = -1;
      } else {
        absl::StatusOr<int32_t> a_id = Compile(a, where + "/additionalProperties");
        if (!a_id.ok()) return a_id.status();
        n.additional = *a_id;
      }
    }
    std::vector<std::string> names;
    if (s.contains("properties")) {
      const json& p = s["properties"];
      if (!p.is_object()) return Error(where, "properties must be an object");
      // nlohmann::json keeps object keys sorted, so "schema order" is by name.
      for (auto it = p.begin(); it != p.end(); ++it) {
        absl::StatusOr<int32_t> v = Compile(it.value(), fmt::format("{}/properties/{}", where, it.key()));
        if (!v.ok()) return v.status();
        absl::StatusOr<std::string> key = Dump(json(it.key()), where);
        if (!key.ok()) return key.status();
        names.push_back(it.key());
        n.properties.push_back({AddLiteral(*std::move(key)), *v, false});
      }
    }
    for (const std::string& name : required) {
      auto it = std::find(names.begin(), names.end(), name);
      if (it == names.end()) {
        if (n.additional < 0) {
          return Error(where, fmt::format("required property '{}' is neither declared nor allowed", name));
        }
        absl::StatusOr<std::string> key = Dump(json(name), where);
        if (!key.ok()) return key.status();
        names.push_back(name);
        n.properties.push_back({AddLiteral(*std::move(key)), n.additional, true});
      } else {
        n.properties[static_cast<size_t>(it - names.begin())].required = true;
      }
    }
    n.next_required.assign(n.properties.size() + 1, static_cast<int32_t>(n.properties.size()));
    for (int32_t i = static_cast<int32_t>(n.properties.size()) - 1; i >= 0; --i) {
      n.next_required[i] = n.properties[i].required ? i : n.next_required[i + 1];
    }
    if (!n.properties.empty()) n.additional = -1;  // only the declared keys are generated

    // Arrays.
    if (s.contains("items")) {
      if (s["items"].is_array()) return Error(where, "items as an array (tuple validation) is not supported");
      absl::StatusOr<int32_t> it = Compile(s["items"], where + "/items");
      if (!it.ok()) return it.status();
      n.items = *it;
    }
    if (s.contains("minItems")) {
      CAIRN_ASSIGN_OR_RETURN(n.min_items, Count(s, "minItems", where));
    }
    if (s.contains("maxItems")) {
      CAIRN_ASSIGN_OR_RETURN(n.max_items, Count(s, "maxItems", where));
    }
    if (n.min_items > n.max_items && (n.types & kArray)) return Error(where, "minItems > maxItems admits no array");

    // Strings.
    if (s.contains("minLength")) {
      CAIRN_ASSIGN_OR_RETURN(n.min_length, Count(s, "minLength", where));
    }
    if (s.contains("maxLength")) {
      CAIRN_ASSIGN_OR_RETURN(n.max_length, Count(s, "maxLength", where));
    }
    if (n.min_length > n.max_length && (n.types & kString)) {
      return Error(where, "minLength > maxLength admits no string");
    }
    if (n.types == 0) return Error(where, "the schema admits no type");

    const int32_t id = NewNode();
    g_.nodes[id] = std::move(n);
    return id;
  }

  static uint32_t TypeOf(const json& v) {
    if (v.is_object()) return kObject;
    if (v.is_array()) return kArray;
    if (v.is_string()) return kString;
    if (v.is_number_integer()) return kInteger | kNumber;
    if (v.is_number()) return kNumber;
    if (v.is_boolean()) return kBoolean;
    return kNull;
  }

  // Frames the recognizer needs for a value of node `id` (free-form values are
  // bounded at run time instead).
  absl::StatusOr<int> Frames(int32_t id, int depth) {
    if (id == 0) return 1;
    if (depth > kMaxFrames) return absl::InvalidArgumentError("json schema: nests too deeply");
    const JsonNode& n = g_.nodes[id];
    int most = 1;
    for (int32_t a : n.alternatives) {
      absl::StatusOr<int> f = Frames(a, depth + 1);
      if (!f.ok()) return f.status();
      most = std::max(most, *f);
    }
    if (!n.alternatives.empty() || !n.literals.empty()) return most;
    std::vector<int32_t> children;
    if (n.types & kObject) {
      for (const JsonProperty& p : n.properties) children.push_back(p.node);
      if (n.additional > 0) children.push_back(n.additional);
      most = 2;  // the object and its key
    }
    if ((n.types & kArray) && n.items > 0) children.push_back(n.items);
    for (int32_t c : children) {
      absl::StatusOr<int> f = Frames(c, depth + 1);
      if (!f.ok()) return f.status();
      most = std::max(most, 1 + *f);
    }
    return most;
  }

  const json& root_;
  JsonGrammar g_;
  std::map<std::string, int32_t, std::less<>> literal_ids_ = {{"true", 0}, {"false", 1}, {"null", 2}};
  std::map<std::string, int32_t> ref_nodes_;
  std::set<std::string> active_refs_;
};

}  // namespace

JsonGrammar AnyObjectGrammar() {
  JsonGrammar g = BaseGrammar();
  JsonNode obj;
  obj.types = kObject;
  obj.next_required = {0};
  g.nodes.push_back(obj);
  g.root = 1;
  return g;
}

absl::StatusOr<JsonGrammar> CompileJsonSchema(const nlohmann::json& schema) {
  if (schema.is_null()) return AnyObjectGrammar();
  return Compiler(schema).Run();
}

}  // namespace cairn::infer::json
