#include "tools/fleetctl/cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace fleetcore::fleetctl {
namespace {

namespace gp = google::protobuf;

// file://PATH reads the value from a file, as the AWS CLI does.
absl::StatusOr<std::string> ResolveValue(absl::string_view flag, std::string value) {
  absl::string_view v = value;
  if (absl::ConsumePrefix(&v, "file://")) {
    std::ifstream in{std::string(v)};
    if (!in) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read file ", v));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  return value;
}

const gp::FieldDescriptor* FindField(const gp::Descriptor& d, absl::string_view flag) {
  for (int i = 0; i < d.field_count(); ++i) {
    if (KebabFromSnake(d.field(i)->name()) == flag) {
      return d.field(i);
    }
  }
  return nullptr;
}

bool IsStructured(const gp::FieldDescriptor& f) {
  return f.is_repeated() || f.cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE;
}

absl::StatusOr<nlohmann::json> FieldValue(const gp::FieldDescriptor& f, absl::string_view flag,
                                          const std::string& raw) {
  if (IsStructured(f)) {
    auto parsed = nlohmann::json::parse(raw, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": expected JSON (inline or file://PATH), got '", raw, "'"));
    }
    return parsed;
  }
  if (f.type() == gp::FieldDescriptor::TYPE_BYTES) {
    // Raw bytes on the command line (or from file://PATH), as the AWS CLI takes a payload
    // with --cli-binary-format raw-in-base64-out; the JSON mapping wants base64.
    return nlohmann::json(absl::Base64Escape(raw));
  }
  switch (f.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_STRING:
    case gp::FieldDescriptor::CPPTYPE_ENUM:
      return nlohmann::json(raw);
    case gp::FieldDescriptor::CPPTYPE_BOOL: {
      bool b;
      if (!absl::SimpleAtob(raw, &b)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag, ": expected true or false, got '", raw, "'"));
      }
      return nlohmann::json(b);
    }
    case gp::FieldDescriptor::CPPTYPE_DOUBLE:
    case gp::FieldDescriptor::CPPTYPE_FLOAT: {
      double d;
      if (!absl::SimpleAtod(raw, &d)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag, ": expected a number, got '", raw, "'"));
      }
      return nlohmann::json(d);
    }
    default: {
      int64_t n;
      if (!absl::SimpleAtoi(raw, &n)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", flag, ": expected an integer, got '", raw, "'"));
      }
      return nlohmann::json(n);
    }
  }
}

std::string TypeName(const gp::FieldDescriptor& f) {
  if (f.is_map()) return "JSON object";
  if (f.is_repeated()) return "JSON list";
  switch (f.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_MESSAGE:
      return absl::StrCat("JSON ", f.message_type()->name());
    case gp::FieldDescriptor::CPPTYPE_BOOL:
      return "boolean";
    case gp::FieldDescriptor::CPPTYPE_STRING:
      return f.type() == gp::FieldDescriptor::TYPE_BYTES ? "bytes, as text or file://PATH"
                                                         : "string";
    case gp::FieldDescriptor::CPPTYPE_ENUM: {
      std::string values;
      for (int i = 1; i < f.enum_type()->value_count(); ++i) {
        absl::StrAppend(&values, i > 1 ? "|" : "", f.enum_type()->value(i)->name());
      }
      return values;
    }
    default:
      return "number";
  }
}

}  // namespace

std::string KebabFromCamel(absl::string_view camel) {
  std::string out;
  // A run of capitals is one word: "RegisterCACertificate" -> "register-ca-certificate".
  for (size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (absl::ascii_isupper(c)) {
      const bool after_lower = i > 0 && !absl::ascii_isupper(camel[i - 1]);
      const bool ends_run = i > 0 && absl::ascii_isupper(camel[i - 1]) && i + 1 < camel.size() &&
                            absl::ascii_islower(camel[i + 1]);
      if (after_lower || ends_run) out.push_back('-');
      out.push_back(absl::ascii_tolower(c));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string KebabFromSnake(absl::string_view snake) {
  std::string out(snake);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

std::vector<Verb> AllVerbs(const std::vector<ServiceEntry>& services) {
  std::vector<Verb> verbs;
  for (const ServiceEntry& s : services) {
    for (int i = 0; i < s.service->method_count(); ++i) {
      const gp::MethodDescriptor* m = s.service->method(i);
      verbs.push_back({KebabFromCamel(m->name()), &s, m});
    }
  }
  return verbs;
}

absl::StatusOr<std::string> RequestJson(const gp::Descriptor& request,
                                        const std::vector<std::string>& args, bool* no_paginate) {
  nlohmann::json body = nlohmann::json::object();
  nlohmann::json flags = nlohmann::json::object();
  *no_paginate = false;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "': options are --name value"));
    }
    std::string flag(arg);
    std::optional<std::string> value;
    if (size_t eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    if (flag == "no-paginate") {
      *no_paginate = true;
      continue;
    }
    if (flag == "cli-input-json") {
      if (!value.has_value()) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError("--cli-input-json needs a value");
        }
        value = args[++i];
      }
      auto raw = ResolveValue(flag, *value);
      if (!raw.ok()) return raw.status();
      auto parsed = nlohmann::json::parse(*raw, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        return absl::InvalidArgumentError("--cli-input-json: expected a JSON object");
      }
      body.update(parsed);
      continue;
    }
    const gp::FieldDescriptor* field = FindField(request, flag);
    bool negated = false;
    if (field == nullptr && absl::StartsWith(flag, "no-")) {
      field = FindField(request, flag.substr(3));
      negated = field != nullptr && field->cpp_type() == gp::FieldDescriptor::CPPTYPE_BOOL;
      if (!negated) field = nullptr;
    }
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown option --", flag, " for this command (see: fleetctl <command> help)"));
    }
    const std::string key = field->json_name();
    if (field->cpp_type() == gp::FieldDescriptor::CPPTYPE_BOOL && !field->is_repeated() &&
        !value.has_value()) {
      flags[key] = !negated;
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", flag, " needs a value"));
      }
      value = args[++i];
    }
    auto raw = ResolveValue(flag, *value);
    if (!raw.ok()) return raw.status();
    auto v = FieldValue(*field, flag, *raw);
    if (!v.ok()) return v.status();
    flags[key] = *v;
  }
  body.update(flags);
  return body.dump();
}

namespace {

nlohmann::json SkeletonOf(const gp::Descriptor& message, std::vector<const gp::Descriptor*>* path);

nlohmann::json PlaceholderOf(const gp::FieldDescriptor& f,
                             std::vector<const gp::Descriptor*>* path) {
  switch (f.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_STRING:
      return "";
    case gp::FieldDescriptor::CPPTYPE_BOOL:
      return true;
    case gp::FieldDescriptor::CPPTYPE_ENUM:
      return f.enum_type()->value(0)->name();
    case gp::FieldDescriptor::CPPTYPE_MESSAGE:
      if (f.message_type()->full_name() == "google.protobuf.Timestamp") {
        return "1970-01-01T00:00:00Z";
      }
      return SkeletonOf(*f.message_type(), path);
    default:
      return 0;
  }
}

nlohmann::json SkeletonOf(const gp::Descriptor& message, std::vector<const gp::Descriptor*>* path) {
  nlohmann::json out = nlohmann::json::object();
  if (std::find(path->begin(), path->end(), &message) != path->end()) return out;
  path->push_back(&message);
  for (int i = 0; i < message.field_count(); ++i) {
    const gp::FieldDescriptor& f = *message.field(i);
    if (f.is_map()) {
      out[f.json_name()] = {{"KeyName", PlaceholderOf(*f.message_type()->map_value(), path)}};
    } else if (f.is_repeated()) {
      out[f.json_name()] = nlohmann::json::array({PlaceholderOf(f, path)});
    } else {
      out[f.json_name()] = PlaceholderOf(f, path);
    }
  }
  path->pop_back();
  return out;
}

}  // namespace

nlohmann::json Skeleton(const gp::Descriptor& message) {
  std::vector<const gp::Descriptor*> path;
  return SkeletonOf(message, &path);
}

std::string VerbHelp(const Verb& verb) {
  const gp::Descriptor& req = *verb.method->input_type();
  std::string out = absl::StrCat("fleetctl ", verb.name, " (", verb.service->service->full_name(),
                                 "/", verb.method->name(), ")\n\noptions:\n");
  for (int i = 0; i < req.field_count(); ++i) {
    const gp::FieldDescriptor& f = *req.field(i);
    absl::StrAppend(&out, "  --", KebabFromSnake(f.name()), "  ", TypeName(f), "\n");
  }
  absl::StrAppend(&out, "  --cli-input-json  JSON of the whole request (or file://PATH)\n"
                       "  --generate-cli-skeleton [input|output]  print that JSON with every "
                       "field, without calling\n");
  if (verb.method->output_type()->FindFieldByName("certificate_pem") != nullptr) {
    absl::StrAppend(&out,
                    "  --certificate-pem-outfile PATH  write the certificate there\n"
                    "  --public-key-outfile PATH       write the public key there\n"
                    "  --private-key-outfile PATH      write the private key there (mode 0600; "
                    "not printed then)\n");
  }
  return out;
}

absl::StatusOr<OutFiles> TakeOutFiles(std::vector<std::string>* args) {
  OutFiles files;
  std::vector<std::string> rest;
  const std::pair<const char*, std::string*> options[] = {
      {"--certificate-pem-outfile", &files.certificate_pem},
      {"--public-key-outfile", &files.public_key},
      {"--private-key-outfile", &files.private_key}};
  for (size_t i = 0; i < args->size(); ++i) {
    const std::string& a = (*args)[i];
    bool taken = false;
    for (const auto& [name, target] : options) {
      if (a == name) {
        if (i + 1 >= args->size()) {
          return absl::InvalidArgumentError(absl::StrCat(name, " needs a file name"));
        }
        *target = (*args)[++i];
        taken = true;
      } else if (absl::StartsWith(a, absl::StrCat(name, "="))) {
        *target = a.substr(strlen(name) + 1);
        taken = true;
      }
    }
    if (!taken) rest.push_back(a);
  }
  if (!files.private_key.empty() && access(files.private_key.c_str(), F_OK) == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        files.private_key, " exists: a private key is never overwritten; remove it first"));
  }
  *args = std::move(rest);
  return files;
}

namespace {

absl::Status WriteFile(const std::string& path, const std::string& data, mode_t mode,
                       bool exclusive) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
  const int fd = open(path.c_str(), flags, mode);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot write ", path, ": ", std::strerror(errno),
        errno == EEXIST ? " (a private key is never overwritten; remove the file first)" : ""));
  }
  const ssize_t n = write(fd, data.data(), data.size());
  const bool ok = n == static_cast<ssize_t>(data.size());
  close(fd);
  if (!ok) return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string StringAt(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

}  // namespace

absl::Status WriteOutFiles(const OutFiles& files, nlohmann::json* out) {
  if (files.empty()) return absl::OkStatus();
  nlohmann::json* pair = out->contains("keyPair") ? &(*out)["keyPair"] : nullptr;
  const std::string cert = StringAt(*out, "certificatePem");
  const std::string pub = pair != nullptr ? StringAt(*pair, "publicKey") : "";
  std::string priv = pair != nullptr ? StringAt(*pair, "privateKey") : "";
  if (priv.empty()) priv = StringAt(*out, "privateKey");
  auto need = [](const std::string& path, const std::string& value, const char* what) {
    return !path.empty() && value.empty()
               ? absl::InvalidArgumentError(absl::StrCat("this command's answer has no ", what))
               : absl::OkStatus();
  };
  if (absl::Status s = need(files.certificate_pem, cert, "certificatePem"); !s.ok()) return s;
  if (absl::Status s = need(files.public_key, pub, "public key"); !s.ok()) return s;
  if (absl::Status s = need(files.private_key, priv, "private key"); !s.ok()) return s;
  if (!files.private_key.empty()) {
    if (absl::Status s = WriteFile(files.private_key, priv, 0600, /*exclusive=*/true); !s.ok()) {
      return s;
    }
    const std::string note = absl::StrCat("(written to ", files.private_key, ")");
    if (pair != nullptr && pair->contains("privateKey")) (*pair)["privateKey"] = note;
    if (out->contains("privateKey")) (*out)["privateKey"] = note;
  }
  if (!files.certificate_pem.empty()) {
    if (absl::Status s = WriteFile(files.certificate_pem, cert, 0644, false); !s.ok()) return s;
  }
  if (!files.public_key.empty()) {
    if (absl::Status s = WriteFile(files.public_key, pub, 0644, false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace fleetcore::fleetctl
