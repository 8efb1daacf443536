#include "services/ca/template_engine.h"

#include <set>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/policy/policy.h"
#include "common/status/status_macros.h"
#include "common/tls/x509.h"
#include "nlohmann/json.hpp"

namespace fleetcore::ca {
namespace {

using ::fleetcore::tls::Sha256Hex;
using json = nlohmann::json;
using Value = std::variant<std::string, std::vector<std::string>>;

constexpr size_t kMaxBodyBytes = 10000;

const std::set<std::string, std::less<>> kCertificateParameters = {
    "AWS::IoT::Certificate::Id",
    "AWS::IoT::Certificate::CommonName",
    "AWS::IoT::Certificate::Country",
    "AWS::IoT::Certificate::Organization",
    "AWS::IoT::Certificate::OrganizationalUnit",
    "AWS::IoT::Certificate::DistinguishedNameQualifier",
    "AWS::IoT::Certificate::StateName",
    "AWS::IoT::Certificate::SerialNumber",
};

absl::Status Fault(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

std::string Child(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}
std::string Index(absl::string_view path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

// Evaluation of property values and intrinsics. With `params` null it only validates (Ref
// names, intrinsic shapes, map names) and yields placeholders.
class Evaluator {
 public:
  Evaluator(const json& doc, const std::set<std::string, std::less<>>& declared,
            const std::map<std::string, std::string>* params)
      : doc_(doc), declared_(declared), params_(params) {}

  absl::StatusOr<Value> Eval(const json& v, const std::string& path) const {
    if (v.is_string()) return Value(v.get<std::string>());
    if (v.is_number_integer()) return Value(absl::StrCat(v.get<int64_t>()));
    if (v.is_number()) return Value(v.dump());
    if (v.is_boolean()) return Value(std::string(v.get<bool>() ? "true" : "false"));
    if (v.is_array()) {
      std::vector<std::string> out;
      for (size_t i = 0; i < v.size(); ++i) {
        FLEETCORE_ASSIGN_OR_RETURN(std::string s, String(v[i], Index(path, i)));
        out.push_back(std::move(s));
      }
      return Value(std::move(out));
    }
    if (v.is_object() && v.size() == 1) {
      const std::string fn = v.begin().key();
      const json& arg = v.begin().value();
      const std::string at = Child(path, fn);
      if (fn == "Ref") return Ref(arg, at);
      if (fn == "Fn::Join") return Join(arg, at);
      if (fn == "Fn::Select") return Select(arg, at);
      if (fn == "Fn::Split") return Split(arg, at);
      if (fn == "Fn::Sub") return Sub(arg, at);
      if (fn == "Fn::FindInMap") return FindInMap(arg, at);
      return Fault(path, absl::StrCat("unknown intrinsic function \"", fn,
                                      "\" (Ref, Fn::Join, Fn::Select, Fn::Split, Fn::Sub, "
                                      "Fn::FindInMap)"));
    }
    return Fault(path, "expected a string, a list or one intrinsic function");
  }

  absl::StatusOr<std::string> String(const json& v, const std::string& path) const {
    FLEETCORE_ASSIGN_OR_RETURN(Value value, Eval(v, path));
    if (auto* s = std::get_if<std::string>(&value)) return *s;
    return Fault(path, "expected a string, got a list");
  }

  absl::StatusOr<std::vector<std::string>> List(const json& v, const std::string& path) const {
    FLEETCORE_ASSIGN_OR_RETURN(Value value, Eval(v, path));
    if (auto* l = std::get_if<std::vector<std::string>>(&value)) return *l;
    return Fault(path, "expected a list, got a string");
  }

  bool validating() const { return params_ == nullptr; }

 private:
  absl::StatusOr<Value> Ref(const json& arg, const std::string& path) const {
    if (!arg.is_string()) return Fault(path, "Ref takes the name of a parameter");
    const std::string name = arg.get<std::string>();
    if (declared_.count(name) == 0 && kCertificateParameters.count(name) == 0) {
      return Fault(path, absl::StrCat("Ref names \"", name, "\", which is not a parameter"));
    }
    if (validating()) return Value(std::string());
    auto it = params_->find(name);
    if (it == params_->end()) {
      return Fault(path, absl::StrCat("parameter \"", name, "\" has no value and no Default"));
    }
    return Value(it->second);
  }

  absl::StatusOr<Value> Join(const json& arg, const std::string& path) const {
    if (!arg.is_array() || arg.size() != 2 || !arg[0].is_string()) {
      return Fault(path, "Fn::Join takes [\"delimiter\", [values...]]");
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> parts, List(arg[1], Index(path, 1)));
    return Value(absl::StrJoin(parts, arg[0].get<std::string>()));
  }

  absl::StatusOr<Value> Select(const json& arg, const std::string& path) const {
    if (!arg.is_array() || arg.size() != 2) {
      return Fault(path, "Fn::Select takes [index, [values...]]");
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::string index_text, String(arg[0], Index(path, 0)));
    FLEETCORE_ASSIGN_OR_RETURN(std::vector<std::string> list, List(arg[1], Index(path, 1)));
    if (validating()) return Value(std::string());
    int64_t index = -1;
    if (!absl::SimpleAtoi(index_text, &index) || index < 0 ||
        index >= static_cast<int64_t>(list.size())) {
      return Fault(path, absl::StrCat("Fn::Select index ", index_text, " is outside the list of ",
                                      list.size()));
    }
    return Value(list[static_cast<size_t>(index)]);
  }

  absl::StatusOr<Value> Split(const json& arg, const std::string& path) const {
    if (!arg.is_array() || arg.size() != 2 || !arg[0].is_string() ||
        arg[0].get<std::string>().empty()) {
      return Fault(path, "Fn::Split takes [\"delimiter\", \"string\"]");
    }
    FLEETCORE_ASSIGN_OR_RETURN(std::string text, String(arg[1], Index(path, 1)));
    if (validating()) return Value(std::vector<std::string>());
    return Value(std::vector<std::string>(absl::StrSplit(text, arg[0].get<std::string>())));
  }

  absl::StatusOr<Value> Sub(const json& arg, const std::string& path) const {
    std::string text;
    std::map<std::string, std::string> vars;
    if (arg.is_string()) {
      text = arg.get<std::string>();
    } else if (arg.is_array() && arg.size() == 2 && arg[0].is_string() && arg[1].is_object()) {
      text = arg[0].get<std::string>();
      for (const auto& [k, v] : arg[1].items()) {
        FLEETCORE_ASSIGN_OR_RETURN(vars[k], String(v, Child(Index(path, 1), k)));
      }
    } else {
      return Fault(path, "Fn::Sub takes \"text with ${Name}\" or [\"text\", {\"Name\": value}]");
    }
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t open = text.find("${", pos);
      if (open == std::string::npos) {
        out.append(text, pos, std::string::npos);
        break;
      }
      out.append(text, pos, open - pos);
      const size_t close = text.find('}', open);
      if (close == std::string::npos) return Fault(path, "Fn::Sub: \"${\" without \"}\"");
      const std::string name = text.substr(open + 2, close - open - 2);
      if (auto it = vars.find(name); it != vars.end()) {
        out += it->second;
      } else {
        FLEETCORE_ASSIGN_OR_RETURN(std::string value, String(json{{"Ref", name}}, path));
        out += value;
      }
      pos = close + 1;
    }
    return Value(out);
  }

  absl::StatusOr<Value> FindInMap(const json& arg, const std::string& path) const {
    if (!arg.is_array() || arg.size() != 3) {
      return Fault(path, "Fn::FindInMap takes [\"MapName\", \"TopLevelKey\", \"SecondLevelKey\"]");
    }
    std::string keys[3];
    for (size_t i = 0; i < 3; ++i) {
      FLEETCORE_ASSIGN_OR_RETURN(keys[i], String(arg[i], Index(path, i)));
    }
    const json* maps = doc_.contains("Mappings") ? &doc_["Mappings"] : nullptr;
    if (arg[0].is_string() && (maps == nullptr || !maps->contains(keys[0]))) {
      return Fault(path, absl::StrCat("Fn::FindInMap: there is no mapping \"", keys[0], "\""));
    }
    if (validating()) return Value(std::string());
    const json& map = (*maps)[keys[0]];
    if (!map.contains(keys[1]) || !map[keys[1]].contains(keys[2])) {
      return Fault(path, absl::StrCat("Fn::FindInMap: mapping \"", keys[0], "\" has no ", keys[1],
                                      ".", keys[2]));
    }
    const json& v = map[keys[1]][keys[2]];
    if (v.is_string()) return Value(v.get<std::string>());
    if (v.is_array()) return Eval(v, path);
    return Value(v.dump());
  }

  const json& doc_;
  const std::set<std::string, std::less<>>& declared_;
  const std::map<std::string, std::string>* params_;
};

absl::StatusOr<Override> ParseOverride(const json& v, const std::string& path, bool merge_ok) {
  if (!v.is_string()) return Fault(path, "expected DO_NOTHING, REPLACE, FAIL or MERGE");
  const std::string s = v.get<std::string>();
  if (s == "DO_NOTHING") return Override::kDoNothing;
  if (s == "REPLACE") return Override::kReplace;
  if (s == "FAIL") return Override::kFail;
  if (s == "MERGE" && merge_ok) return Override::kMerge;
  return Fault(path, absl::StrCat("\"", s, "\" is not ",
                                  merge_ok ? "DO_NOTHING, REPLACE, FAIL or MERGE"
                                           : "DO_NOTHING, REPLACE or FAIL"));
}

absl::Status CheckKeys(const json& obj, const std::string& path,
                       std::initializer_list<const char*> allowed) {
  for (const auto& [k, unused] : obj.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) {
      std::vector<std::string> names(allowed.begin(), allowed.end());
      return Fault(Child(path, k),
                   absl::StrCat("unknown key (expected one of ", absl::StrJoin(names, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

struct ProvisioningTemplate::Impl {
  json doc;
  TemplateType type;
  std::set<std::string, std::less<>> declared;
  std::vector<std::string> parameter_names;
  std::map<std::string, std::string> defaults;
  std::map<std::string, bool> numeric;

  // Walks the resources; with `params` null only validates.
  absl::StatusOr<ProvisioningPlan> Run(const std::map<std::string, std::string>* params) const;
};

absl::StatusOr<ProvisioningPlan> ProvisioningTemplate::Impl::Run(
    const std::map<std::string, std::string>* params) const {
  Evaluator eval(doc, declared, params);
  ProvisioningPlan plan;
  const json& resources = doc["Resources"];
  for (const auto& [name, resource] : resources.items()) {
    if (name.empty()) return Fault("Resources", "a resource needs a name (its logical ID)");
    const std::string path = Child("Resources", name);
    if (!resource.is_object()) return Fault(path, "a resource is an object");
    FLEETCORE_RETURN_IF_ERROR(
        CheckKeys(resource, path, {"Type", "Properties", "OverrideSettings"}));
    if (!resource.contains("Type") || !resource["Type"].is_string()) {
      return Fault(Child(path, "Type"),
                   "AWS::IoT::Thing, AWS::IoT::Certificate or AWS::IoT::Policy is required");
    }
    const std::string kind = resource["Type"].get<std::string>();
    const json props = resource.contains("Properties") ? resource["Properties"] : json::object();
    const std::string ppath = Child(path, "Properties");
    if (!props.is_object()) return Fault(ppath, "Properties is an object");
    const json overrides =
        resource.contains("OverrideSettings") ? resource["OverrideSettings"] : json::object();
    const std::string opath = Child(path, "OverrideSettings");
    if (!overrides.is_object()) return Fault(opath, "OverrideSettings is an object");

    if (kind == "AWS::IoT::Thing") {
      if (plan.thing.has_value()) return Fault(path, "a template has at most one thing");
      FLEETCORE_RETURN_IF_ERROR(CheckKeys(
          props, ppath,
          {"ThingName", "AttributePayload", "ThingTypeName", "ThingGroups", "BillingGroup"}));
      ThingPlan t{.logical_name = name};
      if (!props.contains("ThingName")) return Fault(Child(ppath, "ThingName"), "required");
      FLEETCORE_ASSIGN_OR_RETURN(t.thing_name,
                                 eval.String(props["ThingName"], Child(ppath, "ThingName")));
      if (props.contains("ThingTypeName")) {
        FLEETCORE_ASSIGN_OR_RETURN(
            t.thing_type_name, eval.String(props["ThingTypeName"], Child(ppath, "ThingTypeName")));
      }
      if (props.contains("AttributePayload")) {
        const json& attrs = props["AttributePayload"];
        const std::string apath = Child(ppath, "AttributePayload");
        if (!attrs.is_object()) return Fault(apath, "AttributePayload is an object");
        std::map<std::string, std::string> out;
        for (const auto& [k, v] : attrs.items()) {
          FLEETCORE_ASSIGN_OR_RETURN(out[k], eval.String(v, Child(apath, k)));
        }
        t.attributes = std::move(out);
      }
      if (props.contains("ThingGroups")) {
        FLEETCORE_ASSIGN_OR_RETURN(t.thing_groups,
                                   eval.List(props["ThingGroups"], Child(ppath, "ThingGroups")));
      }
      if (props.contains("BillingGroup")) {
        FLEETCORE_ASSIGN_OR_RETURN(
            t.billing_group, eval.String(props["BillingGroup"], Child(ppath, "BillingGroup")));
      }
      for (const auto& [k, v] : overrides.items()) {
        const std::string at = Child(opath, k);
        if (k == "AttributePayload" || k == "ATTRIBUTE_PAYLOAD") {
          FLEETCORE_ASSIGN_OR_RETURN(t.attributes_override, ParseOverride(v, at, true));
        } else if (k == "ThingTypeName" || k == "THING_TYPE_NAME") {
          FLEETCORE_ASSIGN_OR_RETURN(t.thing_type_override, ParseOverride(v, at, false));
        } else if (k == "ThingGroups" || k == "THING_GROUPS") {
          FLEETCORE_ASSIGN_OR_RETURN(t.thing_groups_override, ParseOverride(v, at, true));
        } else {
          return Fault(at, "unknown setting (AttributePayload, ThingTypeName, ThingGroups)");
        }
      }
      plan.thing = std::move(t);
    } else if (kind == "AWS::IoT::Certificate") {
      if (plan.certificate.has_value()) {
        return Fault(path, "a template has at most one certificate");
      }
      FLEETCORE_RETURN_IF_ERROR(
          CheckKeys(props, ppath, {"CertificateId", "Status", "ThingPrincipalType"}));
      CertificatePlan c{.logical_name = name};
      const json expected_ref = json{{"Ref", kCertificateIdParameter}};
      if (!props.contains("CertificateId") || props["CertificateId"] != expected_ref) {
        return Fault(Child(ppath, "CertificateId"),
                     "must be {\"Ref\": \"AWS::IoT::Certificate::Id\"}: fleet provisioning and "
                     "JITP provision the device's own certificate");
      }
      FLEETCORE_ASSIGN_OR_RETURN(
          c.certificate_id, eval.String(props["CertificateId"], Child(ppath, "CertificateId")));
      if (props.contains("Status")) {
        FLEETCORE_ASSIGN_OR_RETURN(std::string status,
                                   eval.String(props["Status"], Child(ppath, "Status")));
        if (!eval.validating() || props["Status"].is_string()) {
          if (status == "ACTIVE" || status == "Active") {
            c.active = true;
          } else if (status == "INACTIVE" || status == "Inactive") {
            c.active = false;
          } else {
            return Fault(Child(ppath, "Status"),
                         absl::StrCat("\"", status, "\" is not ACTIVE or INACTIVE"));
          }
        }
      }
      if (props.contains("ThingPrincipalType")) {
        FLEETCORE_ASSIGN_OR_RETURN(
            std::string principal_type,
            eval.String(props["ThingPrincipalType"], Child(ppath, "ThingPrincipalType")));
        if (!eval.validating() || props["ThingPrincipalType"].is_string()) {
          if (principal_type != "EXCLUSIVE_THING" && principal_type != "NON_EXCLUSIVE_THING") {
            return Fault(Child(ppath, "ThingPrincipalType"),
                         "must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING");
          }
          c.exclusive = principal_type == "EXCLUSIVE_THING";
        }
      }
      if (!overrides.empty()) {
        FLEETCORE_RETURN_IF_ERROR(CheckKeys(overrides, opath, {"Status"}));
      }
      plan.certificate = std::move(c);
    } else if (kind == "AWS::IoT::Policy") {
      FLEETCORE_RETURN_IF_ERROR(CheckKeys(props, ppath, {"PolicyName", "PolicyDocument"}));
      if (!overrides.empty()) return Fault(opath, "policies take no OverrideSettings");
      PolicyPlan p{.logical_name = name};
      const bool by_name = props.contains("PolicyName");
      const bool by_doc = props.contains("PolicyDocument");
      if (by_name == by_doc) {
        return Fault(ppath, "a policy needs exactly one of PolicyName and PolicyDocument");
      }
      if (by_name) {
        FLEETCORE_ASSIGN_OR_RETURN(p.policy_name,
                                   eval.String(props["PolicyName"], Child(ppath, "PolicyName")));
      } else {
        const json& d = props["PolicyDocument"];
        if (d.is_object() && !(d.size() == 1 && absl::StartsWith(d.begin().key(), "Fn::")) &&
            !(d.size() == 1 && d.contains("Ref"))) {
          p.policy_document = d.dump();  // an inline policy object
        } else {
          FLEETCORE_ASSIGN_OR_RETURN(p.policy_document,
                                     eval.String(d, Child(ppath, "PolicyDocument")));
        }
        // A literal document is checked now; one built by intrinsics when it is resolved.
        if (!eval.validating() || d.is_string() || d.is_object()) {
          if (!(eval.validating() && d.is_object() && d.size() == 1 &&
                (d.contains("Ref") || absl::StartsWith(d.begin().key(), "Fn::")))) {
            absl::StatusOr<std::shared_ptr<const policy::PolicyDocument>> parsed =
                policy::PolicyDocument::Parse(p.policy_document);
            if (!parsed.ok()) {
              return Fault(Child(ppath, "PolicyDocument"), parsed.status().message());
            }
          }
        }
        // AWS names a policy created from a document after the document.
        if (!eval.validating()) p.policy_name = Sha256Hex(p.policy_document);
      }
      plan.policies.push_back(std::move(p));
    } else {
      return Fault(Child(path, "Type"),
                   absl::StrCat("\"", kind,
                                "\" is not AWS::IoT::Thing, AWS::IoT::Certificate or "
                                "AWS::IoT::Policy"));
    }
  }
  if (plan.policies.size() > 10) {
    return Fault("Resources", "at most 10 policies (a certificate takes 10)");
  }
  if (doc.contains("DeviceConfiguration")) {
    const json& dc = doc["DeviceConfiguration"];
    if (type == TemplateType::kJitp) {
      return Fault("DeviceConfiguration", "JITP templates have no DeviceConfiguration");
    }
    if (!dc.is_object()) return Fault("DeviceConfiguration", "a flat object of strings");
    for (const auto& [k, v] : dc.items()) {
      if (v.is_object() &&
          !(v.size() == 1 && (v.contains("Ref") || absl::StartsWith(v.begin().key(), "Fn::")))) {
        return Fault(Child("DeviceConfiguration", k), "nested objects are not supported");
      }
      FLEETCORE_ASSIGN_OR_RETURN(plan.device_configuration[k],
                                 eval.String(v, Child("DeviceConfiguration", k)));
    }
  }
  return plan;
}

absl::StatusOr<ProvisioningTemplate> ProvisioningTemplate::Parse(absl::string_view body,
                                                                 TemplateType type) {
  if (body.size() > kMaxBodyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("templateBody has ", body.size(), " bytes; AWS IoT allows at most 10000"));
  }
  auto impl = std::make_shared<Impl>();
  impl->type = type;
  impl->doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (impl->doc.is_discarded() || !impl->doc.is_object()) {
    return absl::InvalidArgumentError("templateBody is not a JSON object");
  }
  const json& doc = impl->doc;
  FLEETCORE_RETURN_IF_ERROR(
      CheckKeys(doc, "", {"Parameters", "Mappings", "Resources", "DeviceConfiguration"}));
  if (doc.contains("Parameters")) {
    const json& params = doc["Parameters"];
    if (!params.is_object()) return Fault("Parameters", "an object of parameter declarations");
    for (const auto& [name, decl] : params.items()) {
      const std::string path = Child("Parameters", name);
      if (!decl.is_object()) return Fault(path, "a declaration like {\"Type\": \"String\"}");
      FLEETCORE_RETURN_IF_ERROR(CheckKeys(decl, path, {"Type", "Default", "Description"}));
      const std::string t =
          decl.contains("Type") && decl["Type"].is_string() ? decl["Type"].get<std::string>() : "";
      if (t != "String" && t != "Number") {
        return Fault(Child(path, "Type"), "must be \"String\" or \"Number\"");
      }
      impl->declared.insert(name);
      impl->parameter_names.push_back(name);
      impl->numeric[name] = t == "Number";
      if (decl.contains("Default")) {
        const json& d = decl["Default"];
        if (d.is_string()) {
          impl->defaults[name] = d.get<std::string>();
        } else if (d.is_number()) {
          impl->defaults[name] = d.is_number_integer() ? absl::StrCat(d.get<int64_t>()) : d.dump();
        } else {
          return Fault(Child(path, "Default"), "a string or a number");
        }
      }
    }
  }
  if (doc.contains("Mappings")) {
    const json& maps = doc["Mappings"];
    if (!maps.is_object()) return Fault("Mappings", "an object of maps");
    for (const auto& [name, map] : maps.items()) {
      if (!map.is_object()) return Fault(Child("Mappings", name), "a map of maps");
      for (const auto& [key, inner] : map.items()) {
        if (!inner.is_object()) {
          return Fault(Child(Child("Mappings", name), key), "a map of values");
        }
      }
    }
  }
  if (!doc.contains("Resources") || !doc["Resources"].is_object() || doc["Resources"].empty()) {
    return Fault("Resources", "at least one resource is required");
  }
  absl::StatusOr<ProvisioningPlan> checked = impl->Run(nullptr);
  if (!checked.ok()) return checked.status();
  return ProvisioningTemplate(std::move(impl));
}

absl::StatusOr<ProvisioningPlan> ProvisioningTemplate::Resolve(
    const std::map<std::string, std::string>& parameters) const {
  std::map<std::string, std::string> values = impl_->defaults;
  for (const auto& [k, v] : parameters) values[k] = v;
  for (const std::string& name : impl_->parameter_names) {
    auto it = values.find(name);
    if (it == values.end()) {
      return Fault(Child("Parameters", name), "has no value and no Default");
    }
    double unused;
    if (impl_->numeric.at(name) && !absl::SimpleAtod(it->second, &unused)) {
      return Fault(Child("Parameters", name), absl::StrCat("\"", it->second, "\" is not a Number"));
    }
  }
  return impl_->Run(&values);
}

const std::vector<std::string>& ProvisioningTemplate::parameter_names() const {
  return impl_->parameter_names;
}

}  // namespace fleetcore::ca
