// tools/Cli.cpp - helpers the subcommands share.
#include "tools/Cli.h"

#include "driver/Compile.h"
#include "frontend/ModelFile.h"
#include "passes/Optimizer.h"
#include "passes/PlanCheck.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

namespace graphc::cli {

int report(const Diag &d) {
  std::fprintf(stderr, "%s\n", d.str().c_str());
  return 1;
}

Expected<ir::Shape> parseShape(const std::string &text) {
  ir::Shape shape;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('x', pos);
    if (end == std::string::npos)
      end = text.size();
    int64_t d = 0;
    auto [p, ec] = std::from_chars(text.data() + pos, text.data() + end, d);
    if (ec != std::errc() || p != text.data() + end || d < 1 || d > (1 << 24))
      return error(fmt::format("--input: expected sizes like 1x32x32, got {}", quote(text)));
    shape.push_back(d);
    pos = end + 1;
  }
  return shape;
}

std::vector<std::string> &scriptArgs() {
  static std::vector<std::string> args;
  return args;
}

Expected<nn::ModelSpec> loadModelFile(const std::string &path) {
  return frontend::loadModel(path, {}, scriptArgs());
}

void addTrainingFlags(CLI::App *c, TrainingFlags &flags) {
  c->add_option("--criterion", flags.criterion,
                "the loss, for a script without one or in place of the script's: "
                "ClassNLLCriterion (nll), CrossEntropyCriterion (crossentropy) or "
                "MSECriterion (mse)");
  c->add_option("--optim", flags.optim,
                "the optimizer, for a script without one or in place of the script's "
                "(with Torch7's defaults): sgd, adagrad, adam, rmsprop, adadelta or nag")
      ->check(CLI::IsMember(passes::OptimizerConfig::names()));
  c->add_option("--lr", flags.lr, "the optimizer's learningRate")
      ->check(CLI::PositiveNumber.description("LR > 0"));
  c->add_option("--optim-config", flags.optimConfig,
                "more of the optimizer's settings, by Torch7's names: "
                "momentum=0.9,weightDecay=5e-4,nesterov=1");
}

namespace {

/// --criterion's names, any case: Torch7's class names (as nn::Criterion
/// prints them, with or without `nn.` and `Criterion`) and `nll`.
std::optional<nn::CriterionKind> criterionNamed(std::string name) {
  auto lower = [](std::string s) {
    for (char &ch : s)
      ch = char(std::tolower((unsigned char)ch));
    return s;
  };
  name = lower(name);
  if (name.starts_with("nn."))
    name = name.substr(3);
  if (name == "nll")
    name = "classnll";
  for (nn::CriterionKind kind :
       {nn::CriterionKind::ClassNLL, nn::CriterionKind::CrossEntropy, nn::CriterionKind::MSE}) {
    nn::Criterion c;
    c.kind = kind;
    std::string cls = lower(c.str()); // "nn.classnllcriterion()"
    cls = cls.substr(3, cls.size() - 5);
    if (name == cls || name + "criterion" == cls)
      return kind;
  }
  return std::nullopt;
}

Status applyTrainingFlags(nn::ModelSpec &spec, const TrainingFlags &flags) {
  if (!flags.criterion.empty()) {
    auto kind = criterionNamed(flags.criterion);
    if (!kind)
      return error(fmt::format("--criterion {}: graphc knows ClassNLLCriterion (nll), "
                               "CrossEntropyCriterion (crossentropy) and MSECriterion (mse)",
                               flags.criterion));
    nn::Criterion c;
    c.kind = *kind;
    spec.criterion = c;
  }
  if (!flags.optim.empty()) {
    nn::Optimizer o;
    o.name = flags.optim;
    spec.optimizer = o;
  }
  if ((flags.lr > 0 || !flags.optimConfig.empty()) && !spec.optimizer)
    return error("--lr and --optim-config set the optimizer's settings: name the optimizer "
                 "with --optim (the script has none)");
  if (flags.lr > 0)
    spec.optimizer->config["learningRate"] = flags.lr;
  std::string_view rest = flags.optimConfig;
  while (!rest.empty()) {
    std::string_view item = rest.substr(0, rest.find(','));
    rest = item.size() < rest.size() ? rest.substr(item.size() + 1) : std::string_view();
    size_t eq = item.find('=');
    double value = 0;
    auto [p, ec] = eq == std::string_view::npos
                       ? std::from_chars(item.data(), item.data(), value)
                       : std::from_chars(item.data() + eq + 1, item.data() + item.size(), value);
    if (eq == std::string_view::npos || eq == 0 || ec != std::errc() ||
        p != item.data() + item.size() || !std::isfinite(value))
      return error(fmt::format("--optim-config: '{}' is not KEY=NUMBER (e.g. momentum=0.9)", item));
    spec.optimizer->config[std::string(item.substr(0, eq))] = value;
  }
  return {};
}

} // namespace

Expected<nn::ModelSpec> loadTrainingSpec(const std::string &path, const TrainingFlags &flags) {
  auto spec = loadModelFile(path);
  if (!spec)
    return spec;
  if (Status s = applyTrainingFlags(*spec, flags); !s)
    return s.diag();
  auto missing = [&](const char *what, const char *example) {
    Diag d;
    d.file = path;
    d.line = std::max(spec->modelLoc.line, 1);
    d.col = 1;
    d.message = fmt::format("no {} defined; add e.g. `{}`", what, example);
    return d;
  };
  if (!spec->criterion)
    return missing("criterion", "criterion = nn.ClassNLLCriterion()` or pass `--criterion nll");
  if (!spec->optimizer)
    return missing("optimizer", "optimizer = optim.adagrad` or pass `--optim adagrad");
  return spec;
}

Expected<ir::Shape> sampleShape(const nn::ModelSpec &spec, const std::string &flag) {
  ir::Shape given;
  if (!flag.empty()) {
    auto parsed = parseShape(flag);
    if (!parsed)
      return parsed.diag();
    given = *parsed;
  }
  return driver::sampleShape(spec, given);
}

CLI::Validator seedValidator() {
  return CLI::Validator(
      [](std::string &text) -> std::string {
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || ec != std::errc() || p != text.data() + text.size())
          return fmt::format("expected an integer from 0 to 18446744073709551615, got {}",
                             quote(text));
        return "";
      },
      "0..2^64-1");
}

Expected<uint64_t> parseBytes(const std::string &text) {
  auto bad = [&] {
    return error(fmt::format("expected a size like 8G, 512M or 1.5GiB, got {}", quote(text)));
  };
  size_t end = 0;
  while (end < text.size() && (std::isdigit((unsigned char)text[end]) || text[end] == '.'))
    ++end;
  double number = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + end, number);
  if (end == 0 || ec != std::errc() || p != text.data() + end)
    return bad();
  std::string unit = text.substr(end);
  for (const char *suffix : {"iB", "B"})
    if (unit.size() > std::strlen(suffix) &&
        unit.compare(unit.size() - std::strlen(suffix), std::string::npos, suffix) == 0) {
      unit.resize(unit.size() - std::strlen(suffix));
      break;
    }
  static const std::string units = "KMGT";
  double scale = 1;
  if (unit == "B" || unit.empty())
    scale = 1;
  else if (unit.size() == 1 &&
           units.find(char(std::toupper((unsigned char)unit[0]))) != std::string::npos)
    scale = std::pow(1024.0, double(units.find(char(std::toupper((unsigned char)unit[0]))) + 1));
  else
    return bad();
  double bytes = number * scale;
  if (!(bytes >= 1) || bytes >= 0x1p64)
    return error(fmt::format("{} is not a size from 1 byte to 16 EiB", quote(text)));
  return uint64_t(bytes);
}

void addMaxMemoryOption(CLI::App &command, std::string &value) {
  command
      .add_option("--max-memory", value,
                  "refuse to start when the memory the model needs (parameters, optimizer "
                  "state, intermediates at the batch; `graphc compile --stats` shows it) is "
                  "above SIZE, e.g. 8G or 512M (default: the memory this process may still "
                  "allocate: the machine's available memory, ulimit -v, a cgroup's limit)")
      ->check(CLI::Validator(
          [](std::string &text) -> std::string {
            auto v = parseBytes(text);
            return v ? "" : v.diag().message;
          },
          "SIZE"));
}

void addVerifyPlanFlag(CLI::App &command) {
  command.add_flag_callback(
      "--verify-plan", [] { passes::enablePlanChecks(true); },
      "check every memory plan independently before it is used: no two live buffers "
      "overlap, all aligned and inside the arena (on in debug builds)");
}

} // namespace graphc::cli
