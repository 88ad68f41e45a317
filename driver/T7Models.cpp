// driver/T7Models.cpp - Torch7 module objects to an nn::Module tree, their
// weights to the flat buffer, and the tree back to a model file.
#include "driver/T7Models.h"

#include "frontend/Trace.h"
#include "runtime/T7.h"
#include "runtime/T7Write.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string_view>

namespace graphc::driver {
namespace {

using runtime::T7Object;
using runtime::T7Tensor;
using runtime::T7Value;

/// The classes read (frontend/layers.def's t7 column), for the message that
/// names what is not.
std::string supportedClasses() {
  std::vector<std::string> names;
  for (const nn::LayerInfo &l : nn::layers())
    if (l.t7)
      names.push_back(std::string("nn.") + l.name);
  return fmt::format("{} and their cudnn versions", fmt::join(names, ", "));
}

class Importer {
public:
  explicit Importer(std::string path) : path_(std::move(path)) {}

  /// The module `v`; a container that holds itself (a cycle of references,
  /// which the reader closes) is refused rather than followed for ever.
  Expected<nn::Module> module(const T7Value &v, const std::string &where,
                              const std::string &prefix) {
    const T7Object *obj = v.torchObject();
    if (obj && !open_.insert(obj).second)
      return fail(where, fmt::format("{} holds itself (a cycle of references): not a network",
                                     obj->className));
    auto m = moduleOf(v, where, prefix);
    open_.erase(obj);
    return m;
  }

  Expected<nn::Module> moduleOf(const T7Value &v, const std::string &where,
                                const std::string &prefix) {
    const T7Object *obj = v.torchObject();
    if (!obj)
      return fail(where, "not an nn module");
    std::string cls = obj->className;
    const T7Object *fields = obj->fields.table();
    if (!fields)
      return fail(where, fmt::format("{} has no field table", cls));
    // cudnn.X computes what nn.X does: the target is graphc's choice.
    if (cls.rfind("cudnn.", 0) == 0)
      cls = "nn." + cls.substr(6);
    Field f{this, fields, where, obj->className};
    if (const nn::LayerInfo *l = nn::findLayer(cls);
        l && l->t7 && l->maxArgs == 0 && !nn::isContainer(l->kind))
      return nn::layer(l->kind); // no arguments, nothing to read

    if (cls == "nn.Sequential" || cls == "nn.ConcatTable" || cls == "nn.ParallelTable" ||
        cls == "nn.Concat") {
      const T7Value *mods = fields->get("modules");
      const T7Object *list = mods ? mods->table() : nullptr;
      if (!list)
        return fail(where, fmt::format("{} has no `modules` table", obj->className));
      nn::Module seq = cls == "nn.Sequential"    ? nn::Module(nn::Sequential())
                       : cls == "nn.ConcatTable" ? nn::ConcatTable()
                                                 : nn::ParallelTable();
      if (cls == "nn.Concat") {
        auto dim = f.count("dimension");
        if (!dim)
          return dim.diag();
        seq = nn::Concat(*dim);
      }
      for (int i = 1;; ++i) {
        const T7Value *child = list->get(double(i));
        if (!child || child->isNil())
          break;
        auto m = module(*child, fmt::format("{}.modules[{}]", where, i),
                        prefix + std::to_string(i - 1) + ".");
        if (!m)
          return m;
        seq.add(std::move(*m));
      }
      return seq;
    }
    if (cls == "nn.Linear") {
      auto w = f.tensor("weight", 2);
      if (!w)
        return w.diag();
      int64_t out = (*w)->shape[0], in = (*w)->shape[1];
      if (Status s = bias(f, prefix, out); !s)
        return s.diag();
      tensors_[prefix + "weight"] = *w;
      return nn::Linear(in, out);
    }
    if (cls == "nn.SpatialConvolution" || cls == "nn.SpatialConvolutionMM") {
      int64_t v[6];
      const char *names[] = {"nInputPlane", "nOutputPlane", "kW", "kH", "dW", "dH"};
      for (int i = 0; i < 6; ++i) {
        auto n = f.count(names[i]);
        if (!n)
          return n.diag();
        v[i] = *n;
      }
      // Old Torch7 versions kept one `padding` for both sides.
      auto pad = f.count("padding", 0);
      auto padW = pad ? f.count("padW", *pad) : pad;
      auto padH = pad ? f.count("padH", *pad) : pad;
      if (!padW || !padH)
        return (!padW ? padW : padH).diag();
      auto groups = f.count("groups", 1);
      if (!groups || *groups != 1)
        return groups ? fail(where, fmt::format("{} with {} groups: graphc convolves all input "
                                                "planes together (groups = 1)",
                                                obj->className, *groups))
                      : groups.diag();
      auto w = f.tensor("weight", -1);
      if (!w)
        return w.diag();
      // In double: four sizes up to 2^31 would overflow int64.
      double numel = double(v[1]) * double(v[0]) * double(v[3]) * double(v[2]);
      // SpatialConvolutionMM keeps its weight as [nOutputPlane, nInputPlane*kH*kW].
      if (double((*w)->numel()) != numel || (*w)->shape[0] != v[1])
        return fail(where,
                    fmt::format("{}'s weight has size {}, expected [{},{},{},{}]", obj->className,
                                ir::str((*w)->shape), v[1], v[0], v[3], v[2]));
      if (Status s = bias(f, prefix, v[1]); !s)
        return s.diag();
      tensors_[prefix + "weight"] = *w;
      nn::Module m = nn::SpatialConvolution(v[0], v[1], v[2], v[3], v[4], v[5], *padW, *padH);
      if (cls == "nn.SpatialConvolutionMM")
        m.kind = nn::Kind::SpatialConvolutionMM;
      return m;
    }
    if (cls == "nn.SpatialMaxPooling" || cls == "nn.SpatialAveragePooling") {
      bool average = cls == "nn.SpatialAveragePooling";
      int64_t v[6];
      const char *names[] = {"kW", "kH", "dW", "dH", "padW", "padH"};
      for (int i = 0; i < 6; ++i) {
        // Absent strides: the kernel (max), 1 (average); absent paddings 0.
        auto n = f.count(names[i], i < 2 ? -1 : i < 4 ? (average ? 1 : -1) : 0);
        if (!n)
          return n.diag();
        v[i] = *n;
      }
      // Ceil mode: the tracer gives the extra windows as the op's pad_end.
      const T7Value *ceilMode = fields->get("ceil_mode");
      const bool ceil = ceilMode && ceilMode->kind == T7Value::Boolean && ceilMode->boolean;
      if (!average) {
        nn::Module m = nn::SpatialMaxPooling(v[0], v[1], v[2], v[3], v[4], v[5]);
        m.ceil = ceil;
        return m;
      }
      const T7Value *include = fields->get("count_include_pad");
      const T7Value *mode = fields->get("mode"); // cudnn's
      if ((include && include->kind == T7Value::Boolean && !include->boolean) ||
          (mode && mode->kind == T7Value::String &&
           mode->string.find("EXCLUDE") != std::string::npos))
        return fail(where, fmt::format("{} that leaves the padding out of the average: graphc "
                                       "counts it, as Torch7's default does",
                                       obj->className));
      nn::Module m = nn::SpatialAveragePooling(v[0], v[1], v[2], v[3], v[4], v[5]);
      m.ceil = ceil;
      return m;
    }
    if (cls == "nn.BatchNormalization" || cls == "nn.SpatialBatchNormalization")
      return batchNorm(f, cls == "nn.SpatialBatchNormalization", prefix);
    if (cls == "nn.View" || cls == "nn.Reshape") {
      const T7Value *size = fields->get("size");
      const T7Object *storage = size ? size->storage() : nullptr;
      if (!storage || storage->storage.size < 1 || storage->storage.size > 4)
        return fail(where, fmt::format("{} has no `size` of 1 to 4 numbers", obj->className));
      std::vector<int64_t> dims;
      for (int64_t i = 0; i < storage->storage.size; ++i) {
        double d = storage->storage.at(i);
        if (!(d >= 1 && d <= double(int64_t(1) << 40) && d == std::floor(d)))
          return fail(where, fmt::format("{} size {} of {}: graphc takes whole sizes (no -1)",
                                         obj->className, i + 1, d));
        dims.push_back(int64_t(d));
      }
      nn::Module m = nn::Reshape(dims);
      if (cls == "nn.View")
        m.kind = nn::Kind::View;
      return m;
    }
    if (cls == "nn.ReLU") {
      for (const char *name : {"threshold", "val"}) {
        const T7Value *t = fields->get(name);
        if (t && t->kind == T7Value::Number && t->number != 0)
          return fail(where,
                      fmt::format("{} with {} = {}: not a ReLU", obj->className, name, t->number));
      }
      return nn::ReLU();
    }
    if (cls == "nn.Threshold" || cls == "nn.MulConstant" || cls == "nn.AddConstant") {
      const char *names[2] = {"threshold", "val"};
      if (cls != "nn.Threshold")
        names[0] = "constant_scalar", names[1] = nullptr;
      double v[2] = {0, 0};
      for (int i = 0; i < 2 && names[i]; ++i) {
        const T7Value *t = fields->get(names[i]);
        if (!t || t->kind != T7Value::Number || !std::isfinite(t->number))
          return fail(where, fmt::format("{} has no number `{}`", obj->className, names[i]));
        v[i] = t->number;
      }
      if (cls == "nn.Threshold")
        return nn::Threshold(v[0], v[1]);
      return cls == "nn.MulConstant" ? nn::MulConstant(v[0]) : nn::AddConstant(v[0]);
    }
    if (cls == "nn.CAddTable")
      return nn::CAddTable();
    if (cls == "nn.JoinTable") {
      auto dim = f.count("dimension");
      if (!dim)
        return dim.diag();
      const T7Value *nd = fields->get("nInputDims");
      if (!nd || nd->isNil())
        return nn::JoinTable(*dim);
      auto dims = f.count("nInputDims");
      if (!dims)
        return dims.diag();
      return nn::JoinTable(*dim, *dims);
    }
    if (cls == "nn.Dropout") {
      const T7Value *v2 = fields->get("v2");
      if (v2 && v2->kind == T7Value::Boolean && !v2->boolean)
        return fail(where, "nn.Dropout with v2 = false (the old scaling at evaluation): graphc "
                           "scales while training, as Torch7's default does");
      const T7Value *p = fields->get("p");
      double rate = p && p->kind == T7Value::Number ? p->number : 0.5;
      if (!(rate >= 0 && rate < 1))
        return fail(where, fmt::format("nn.Dropout with p = {}", rate));
      return nn::Dropout(rate);
    }
    return fail(where, fmt::format("{} is not supported by graphc yet (supported: {})",
                                   obj->className, supportedClasses()));
  }

  /// The flat buffer in frontend::paramLayout's order.
  Expected<std::vector<float>> flatten(const nn::Module &model) {
    auto layout = frontend::paramLayout(model);
    if (!layout)
      return layout.diag();
    int64_t total = 0;
    for (const ir::ParamInfo &p : *layout)
      total = std::max(total, p.offset + p.numel());
    std::vector<float> flat(static_cast<size_t>(total));
    for (const ir::ParamInfo &p : *layout) {
      std::vector<double> values;
      if (auto c = computed_.find(p.name); c != computed_.end()) {
        values = c->second;
      } else {
        auto it = tensors_.find(p.name);
        GRAPHC_CHECK(it != tensors_.end(), "no tensor read for {}", p.name);
        values = it->second->values();
      }
      GRAPHC_CHECK(int64_t(values.size()) == p.numel(), "{}: {} values for {}", p.name,
                   values.size(), p.numel());
      for (size_t i = 0; i < values.size(); ++i)
        flat[size_t(p.offset) + i] = float(values[i]);
    }
    return flat;
  }

private:
  /// Reads a module's fields, errors naming the module.
  struct Field {
    Importer *im;
    const T7Object *fields;
    const std::string &where;
    const std::string &cls;

    /// A whole number: >= 1, or >= 0 for a padding (a field whose name
    /// starts with "pad"); `otherwise` when absent (-1: required).
    Expected<int64_t> count(const char *name, int64_t otherwise = -1) const {
      double least = std::string_view(name).substr(0, 3) == "pad" ? 0 : 1;
      const T7Value *v = fields->get(name);
      if (!v || v->isNil()) {
        if (otherwise >= 0)
          return otherwise;
        return im->fail(where, fmt::format("{} has no `{}`", cls, name));
      }
      double d = v->kind == T7Value::Number ? v->number : -1;
      if (!(d >= least && d <= double(int64_t(1) << 31) && d == std::floor(d)))
        return im->fail(where, fmt::format("{}'s `{}` is {}, not a size", cls, name,
                                           v->kind == T7Value::Number ? fmt::format("{}", d)
                                                                      : std::string("no number")));
      return int64_t(d);
    }
    /// A tensor of `rank` dimensions (-1: any), with finite values.
    Expected<const T7Tensor *> tensor(const char *name, int rank) const {
      const T7Value *v = fields->get(name);
      const T7Object *t = v ? v->tensor() : nullptr;
      if (!t || t->tensor.numel() == 0)
        return im->fail(where, fmt::format("{} has no `{}` tensor", cls, name));
      if (rank >= 0 && int(t->tensor.shape.size()) != rank)
        return im->fail(where, fmt::format("{}'s {} has size {}, expected {} dimensions", cls, name,
                                           ir::str(t->tensor.shape), rank));
      for (double x : t->tensor.values())
        if (!std::isfinite(x))
          return im->fail(where, fmt::format("{}'s {} holds {}", cls, name, x));
      return &t->tensor;
    }
  };

  Status bias(const Field &f, const std::string &prefix, int64_t size) {
    const T7Value *b = f.fields->get("bias");
    if (!b || b->isNil())
      return fail(f.where,
                  fmt::format("{} without a bias (:noBias()): graphc's layers have one", f.cls));
    auto t = f.tensor("bias", -1);
    if (!t)
      return t.diag();
    if ((*t)->numel() != size)
      return fail(f.where, fmt::format("{}'s bias has size {}, expected [{}]", f.cls,
                                       ir::str((*t)->shape), size));
    tensors_[prefix + "bias"] = *t;
    return {};
  }

  /// Torch7's BatchNormalization and SpatialBatchNormalization (and
  /// cudnn's): eps, momentum, affine, the running statistics. Files from
  /// before nn's version 2 keep `running_std`, 1 / sqrt(var + eps).
  Expected<nn::Module> batchNorm(const Field &f, bool spatial, const std::string &prefix) {
    auto number = [&](const char *name, double otherwise) -> Expected<double> {
      const T7Value *v = f.fields->get(name);
      if (!v || v->isNil())
        return otherwise;
      if (v->kind != T7Value::Number || !std::isfinite(v->number))
        return fail(f.where, fmt::format("{}'s `{}` is not a number", f.cls, name));
      return v->number;
    };
    auto eps = number("eps", 1e-5), momentum = number("momentum", 0.1);
    if (!eps || !momentum)
      return (!eps ? eps : momentum).diag();
    if (!(*eps > 0) || !(*momentum >= 0 && *momentum <= 1))
      return fail(f.where,
                  fmt::format("{} with eps = {} and momentum = {}", f.cls, *eps, *momentum));
    auto mean = f.tensor("running_mean", -1);
    if (!mean)
      return mean.diag();
    const int64_t n = (*mean)->numel();
    auto sized = [&](const char *name, const T7Tensor *t) -> Status {
      if (t->numel() != n)
        return fail(f.where, fmt::format("{}'s {} has size {}, expected [{}]", f.cls, name,
                                         ir::str(t->shape), n));
      return {};
    };
    tensors_[prefix + "running_mean"] = *mean;
    const T7Value *var = f.fields->get("running_var");
    if (var && !var->isNil()) {
      auto t = f.tensor("running_var", -1);
      if (!t)
        return t.diag();
      if (Status s = sized("running_var", *t); !s)
        return s.diag();
      tensors_[prefix + "running_var"] = *t;
    } else {
      auto t = f.tensor("running_std", -1);
      if (!t)
        return fail(f.where, fmt::format("{} has neither `running_var` nor `running_std`", f.cls));
      if (Status s = sized("running_std", *t); !s)
        return s.diag();
      std::vector<double> values = (*t)->values();
      for (double &v : values) {
        if (!(v > 0))
          return fail(f.where, fmt::format("{}'s running_std holds {}", f.cls, v));
        v = 1 / (v * v) - *eps;
      }
      computed_[prefix + "running_var"] = std::move(values);
    }
    // `affine` since nn's BatchNormalization has one; before, a weight meant it.
    const T7Value *affine = f.fields->get("affine");
    const T7Value *weight = f.fields->get("weight");
    bool hasAffine =
        affine && affine->kind == T7Value::Boolean ? affine->boolean : weight && !weight->isNil();
    if (hasAffine) {
      auto w = f.tensor("weight", -1);
      if (!w)
        return w.diag();
      if (Status s = sized("weight", *w); !s)
        return s.diag();
      if (Status s = bias(f, prefix, n); !s)
        return s.diag();
      tensors_[prefix + "weight"] = *w;
    }
    return spatial ? nn::SpatialBatchNormalization(n, *eps, *momentum, hasAffine)
                   : nn::BatchNormalization(n, *eps, *momentum, hasAffine);
  }

  Diag fail(const std::string &where, std::string message) {
    Diag d = error(fmt::format("{}: {}", where, message));
    d.file = path_;
    return d;
  }

  std::string path_;
  std::set<const T7Object *> open_; ///< the modules being read, root first
  std::map<std::string, const T7Tensor *> tensors_;
  std::map<std::string, std::vector<double>> computed_; ///< values converted on import
};

/// The module as Lua: `nn.Linear(1024, 10)`, a container as its
/// constructor and a chain of adds.
std::string lua(const nn::Module &m) {
  std::string out = m.str();
  for (const nn::Module &c : m.children)
    out += ":add(" + lua(c) + ")";
  return out;
}

const nn::Module *lastLayer(const nn::Module &m) {
  if (m.kind != nn::Kind::Sequential)
    return &m;
  for (auto it = m.children.rbegin(); it != m.children.rend(); ++it)
    if (const nn::Module *l = lastLayer(*it))
      return l;
  return nullptr;
}

/// Writes nn modules with the fields Torch7's constructors set.
class Exporter {
public:
  Exporter(const std::vector<ir::ParamInfo> &layout, const std::vector<float> &params,
           runtime::T7Mode mode)
      : params_(params), w_(mode) {
    for (const ir::ParamInfo &p : layout)
      byName_[p.name] = &p;
  }

  Status module(const nn::Module &m, const std::string &prefix) {
    const auto &a = m.args;
    Fields f;
    switch (m.kind) {
    case nn::Kind::Concat: f.push_back(number("dimension", a[0])); [[fallthrough]];
    case nn::Kind::Sequential:
    case nn::Kind::ConcatTable:
    case nn::Kind::ParallelTable:
      f.push_back({"modules", [this, &m, prefix]() -> Status {
                     w_.table(int32_t(m.children.size()));
                     for (size_t i = 0; i < m.children.size(); ++i) {
                       w_.number(double(i + 1));
                       if (Status s = module(m.children[i], prefix + std::to_string(i) + "."); !s)
                         return s;
                     }
                     return {};
                   }});
      break;
    case nn::Kind::Linear: weights(f, prefix, {int64_t(a[1]), int64_t(a[0])}); break;
    case nn::Kind::SpatialConvolution:
    case nn::Kind::SpatialConvolutionMM: {
      const char *names[] = {"nInputPlane", "nOutputPlane", "kW", "kH", "dW", "dH", "padW", "padH"};
      for (size_t i = 0; i < 8; ++i)
        f.push_back(number(names[i], a[i]));
      int64_t out = int64_t(a[1]), in = int64_t(a[0]), kw = int64_t(a[2]), kh = int64_t(a[3]);
      // SpatialConvolutionMM keeps its weight as [nOutputPlane, nInputPlane*kH*kW].
      weights(f, prefix,
              m.kind == nn::Kind::SpatialConvolutionMM ? ir::Shape{out, in * kh * kw}
                                                       : ir::Shape{out, in, kh, kw});
      break;
    }
    case nn::Kind::SpatialMaxPooling: {
      const char *names[] = {"kW", "kH", "dW", "dH", "padW", "padH"};
      for (size_t i = 0; i < 6; ++i)
        f.push_back(number(names[i], a[i]));
      f.push_back({"ceil_mode", [this, &m] { return w_.boolean(m.ceil), Status(); }});
      break;
    }
    case nn::Kind::View:
    case nn::Kind::Reshape: {
      std::vector<int64_t> dims(a.begin(), a.end());
      double numel = 1;
      for (double d : a)
        numel *= d;
      f.push_back({"size", [this, dims] { return w_.longStorage(dims), Status(); }});
      if (m.kind == nn::Kind::View) {
        f.push_back(number("numElements", numel));
      } else {
        std::vector<int64_t> batch{1};
        batch.insert(batch.end(), dims.begin(), dims.end());
        f.push_back({"batchsize", [this, batch] { return w_.longStorage(batch), Status(); }});
        f.push_back(number("nelement", numel));
      }
      break;
    }
    case nn::Kind::ReLU:
    case nn::Kind::Threshold:
      f.push_back(number("threshold", m.kind == nn::Kind::ReLU ? 0 : a[0]));
      f.push_back(number("val", m.kind == nn::Kind::ReLU ? 0 : a[1]));
      f.push_back({"inplace", [this] { return w_.boolean(false), Status(); }});
      break;
    case nn::Kind::MulConstant:
    case nn::Kind::AddConstant:
      f.push_back(number("constant_scalar", a[0]));
      f.push_back({"inplace", [this] { return w_.boolean(false), Status(); }});
      break;
    case nn::Kind::CAddTable:
      f.push_back({"inplace", [this] { return w_.boolean(false), Status(); }});
      break;
    case nn::Kind::JoinTable:
      f.push_back(number("dimension", a[0]));
      if (a.size() > 1)
        f.push_back(number("nInputDims", a[1]));
      break;
    case nn::Kind::SpatialAveragePooling: {
      const char *names[] = {"kW", "kH", "dW", "dH", "padW", "padH"};
      for (size_t i = 0; i < 6; ++i)
        f.push_back(number(names[i], a[i]));
      f.push_back({"ceil_mode", [this, &m] { return w_.boolean(m.ceil), Status(); }});
      f.push_back({"count_include_pad", [this] { return w_.boolean(true), Status(); }});
      f.push_back({"divide", [this] { return w_.boolean(true), Status(); }});
      break;
    }
    case nn::Kind::BatchNormalization:
    case nn::Kind::SpatialBatchNormalization: {
      // As nn's BatchNormalization (version 2) keeps itself.
      f.push_back(number("eps", a[1]));
      f.push_back(number("momentum", a[2]));
      bool affine = a[3] != 0;
      f.push_back({"affine", [this, affine] { return w_.boolean(affine), Status(); }});
      f.push_back(number("nDim", m.kind == nn::Kind::BatchNormalization ? 2 : 4));
      for (const char *name : {"running_mean", "running_var"}) {
        const ir::ParamInfo *p = byName_.at(prefix + name);
        const float *data = params_.data() + p->offset;
        f.push_back({name, [this, p, data] { return w_.floatTensor(p->shape, data), Status(); }});
      }
      if (affine)
        weights(f, prefix, {int64_t(a[0])});
      break;
    }
    case nn::Kind::Dropout:
      f.push_back(number("p", a[0]));
      f.push_back({"v2", [this] { return w_.boolean(true), Status(); }});
      f.push_back({"inplace", [this] { return w_.boolean(false), Status(); }});
      f.push_back({"noise", [this] { return w_.floatTensor({}, nullptr), Status(); }});
      break;
    default: {
      const nn::LayerInfo &l = nn::layerInfo(m.kind);
      if (!l.t7 || l.maxArgs != 0) // a layer with no arguments has no fields of its own
        return error(fmt::format("{} cannot be written as a Torch7 module yet", m.str()));
      break;
    }
    }
    // What nn.Module's constructor sets on every module, after :float().
    f.push_back({"output", [this] { return w_.floatTensor({}, nullptr), Status(); }});
    f.push_back({"gradInput", [this] { return w_.floatTensor({}, nullptr), Status(); }});
    f.push_back({"train", [this] { return w_.boolean(true), Status(); }});
    f.push_back({"_type", [this] { return w_.string("torch.FloatTensor"), Status(); }});
    w_.object(nn::kindName(m.kind));
    w_.table(int32_t(f.size()));
    for (auto &[name, write] : f) {
      w_.string(name);
      if (Status s = write(); !s)
        return s;
    }
    return {};
  }

  std::vector<uint8_t> bytes() const { return w_.bytes(); }

private:
  using Fields = std::vector<std::pair<std::string, std::function<Status()>>>;

  std::pair<std::string, std::function<Status()>> number(const char *name, double v) {
    return {name, [this, v] { return w_.number(v), Status(); }};
  }

  /// weight (as `shape`), bias, and their zero gradients.
  void weights(Fields &f, const std::string &prefix, ir::Shape shape) {
    for (const char *name : {"weight", "bias"}) {
      const ir::ParamInfo *p = byName_.at(prefix + name);
      ir::Shape s = std::string(name) == "weight" ? shape : p->shape;
      const float *data = params_.data() + p->offset;
      f.push_back({name, [this, s, data] { return w_.floatTensor(s, data), Status(); }});
      std::string grad = std::string("grad") + char(std::toupper(name[0])) + (name + 1);
      f.push_back({grad, [this, s, p] {
                     std::vector<float> zeros(size_t(p->numel()), 0.0f);
                     return w_.floatTensor(s, zeros.data()), Status();
                   }});
    }
  }

  const std::vector<float> &params_;
  std::map<std::string, const ir::ParamInfo *> byName_;
  runtime::T7Writer w_;
};

} // namespace

std::string networkLua(const nn::Module &model) { return lua(model); }

Expected<std::vector<uint8_t>> exportT7(const nn::Module &model, const std::vector<float> &params,
                                        runtime::T7Mode mode) {
  auto layout = frontend::paramLayout(model);
  if (!layout)
    return layout.diag();
  for (const ir::ParamInfo &p : *layout)
    GRAPHC_CHECK(p.offset + p.numel() <= int64_t(params.size()), "{} outside the {} parameters",
                 p.name, params.size());
  Exporter e(*layout, params, mode);
  if (Status s = e.module(model, ""); !s)
    return s.diag();
  return e.bytes();
}

Expected<ImportedModel> importT7(const std::string &path) {
  auto file = runtime::readT7(path);
  if (!file)
    return file.diag();
  Importer im(path);
  auto root = im.module(file->root, "root", "");
  if (!root)
    return root.diag();
  ImportedModel out;
  out.spec.file = path;
  if (root->kind == nn::Kind::Sequential)
    static_cast<nn::Module &>(out.spec.model) = std::move(*root);
  else
    out.spec.model.add(std::move(*root));
  auto flat = im.flatten(out.spec.model);
  if (!flat)
    return flat.diag();
  out.params = std::move(*flat);

  const nn::Module *last = lastLayer(out.spec.model);
  bool logProbs = last && last->kind == nn::Kind::LogSoftMax;
  nn::Criterion criterion;
  criterion.kind = logProbs ? nn::CriterionKind::ClassNLL : nn::CriterionKind::CrossEntropy;
  out.spec.criterion = criterion;
  nn::Optimizer sgd;
  sgd.name = "sgd";
  sgd.config["learningRate"] = 0.01;
  out.spec.optimizer = sgd;

  std::string text = fmt::format("-- Imported by graphc from {} (torch.save of a trained "
                                 "network);\n-- its weights are in the .safetensors file "
                                 "beside this one.\nrequire 'nn'\nmodel = nn.Sequential()\n",
                                 path);
  for (const nn::Module &c : out.spec.model.children)
    text += "model:add(" + lua(c) + ")\n";
  text += fmt::format("\n-- For graphc train (fine-tuning): a criterion and an optimizer to start "
                      "from.\nrequire 'optim'\ncriterion = {}\noptimizer = optim.sgd\nconfig = "
                      "{{learningRate = 0.01}}\n",
                      out.spec.criterion->str());
  out.modelFile = std::move(text);
  return out;
}

} // namespace graphc::driver
