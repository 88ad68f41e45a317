// frontend/LuaModel.cpp - the sandboxed Lua 5.1 that runs model scripts.
//
// Lua 5.1 is C: its errors are longjmps. The rule kept here is that no Lua
// error ever crosses a C++ frame holding an object with a destructor:
//   1. Everything that can raise (opening libraries, the prelude, the script,
//      `collect`) runs inside `runAll`, called through lua_cpcall. `runAll`
//      and every C function Lua calls (the allocator, the hook, the message
//      handler, loadUserFile, ...) use only plain C data: fixed char arrays
//      in the Sandbox, no std::string, no exceptions.
//   2. Afterwards C++ reads the flat result arrays (LuaTorch7.cpp's
//      `collect`) with lua_rawgeti/lua_type/lua_tonumber/lua_tolstring on
//      strings: calls that neither allocate nor raise.
// The limits: a counting allocator refuses to grow past the memory cap; a
// count hook every kHookEvery instructions checks the instruction and
// wall-clock caps and raises a plain string error, which the message handler
// locates at the script's current line.
#include "frontend/LuaModel.h"
#include "frontend/ModelFile.h"

#include <fmt/format.h>

#include <lua.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sys/stat.h>
#include <vector>

namespace graphc::frontend {
namespace {

constexpr int kHookEvery = 1000;
constexpr size_t kMaxFileBytes = size_t(64) << 20;
constexpr double kMaxSize = 2147483647.0;
constexpr size_t kTextBytes = 4096;

enum class Stage { Setup, Syntax, Run, Collect };

/// Everything the C callbacks share; plain data only (see the file comment).
struct Sandbox {
  size_t memLimit = 0, memUsed = 0;
  bool memHit = false;
  uint64_t instrLimit = 0, instrs = 0;
  bool instrHit = false;
  double secLimit = 0, start = 0;
  bool timeHit = false;

  const char *text = nullptr; ///< the script, shebang turned into a comment
  size_t textLen = 0;
  const char *chunkName = nullptr;                ///< "@" + file
  const char *dir = nullptr;                      ///< the model's folder, resolved
  const char *file = nullptr;                     ///< the model file, the script's arg[0]
  const std::vector<std::string> *args = nullptr; ///< arg[1..n]: `graphc train M -- ARGS`

  Stage stage = Stage::Setup;
  int resultRef = LUA_NOREF;
  // Where the last error happened (message handler) and the last script line
  // the hook saw (for memory errors, which bypass the handler).
  char errSource[kTextBytes] = {};
  int errLine = 0;
  char errVar[64] = {};
  char errNeedle[128] = {}; ///< the text to point the column at
  const char *lastSourcePtr = nullptr;
  char lastSource[kTextBytes] = {};
  int lastLine = 0;
  char stopMessage[256] = {};
};

Sandbox *sandboxOf(lua_State *L) {
  void *ud = nullptr;
  lua_getallocf(L, &ud);
  return static_cast<Sandbox *>(ud);
}

double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

void copyText(char *to, const char *from) { std::snprintf(to, kTextBytes, "%s", from ? from : ""); }

bool isUserSource(const char *source) {
  return source && source[0] == '@'; // the prelude is "=graphc", strings are neither
}

using Ctor = nn::LayerInfo; // the Lua modules get `nn.X` and `cudnn.X` from frontend/layers.def

/// The criteria, by their Torch7 names.
struct CriterionName {
  const char *name;
  nn::CriterionKind kind;
};
constexpr CriterionName kCriteria[] = {
    {"ClassNLLCriterion", nn::CriterionKind::ClassNLL},
    {"CrossEntropyCriterion", nn::CriterionKind::CrossEntropy},
    {"MSECriterion", nn::CriterionKind::MSE},
};

/// Pushes the prelude's `layers` ({name = {methods, cudnn, params}}) and `criteria`
/// ({name, ...}) arguments.
void pushLayerTables(lua_State *L) {
  lua_newtable(L);
  for (const Ctor &c : nn::layers()) {
    lua_newtable(L);
    lua_pushstring(L, c.methods);
    lua_rawseti(L, -2, 1);
    lua_pushboolean(L, c.cudnn);
    lua_rawseti(L, -2, 2);
    lua_pushstring(L, c.paramRule);
    lua_rawseti(L, -2, 3);
    lua_setfield(L, -2, c.name);
  }
  lua_newtable(L);
  int i = 0;
  for (const CriterionName &c : kCriteria) {
    lua_pushstring(L, c.name);
    lua_rawseti(L, -2, ++i);
  }
}

// --- C callbacks: plain C, no objects with destructors --------------------

void *sandboxAlloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  auto *sb = static_cast<Sandbox *>(ud);
  if (nsize == 0) {
    std::free(ptr);
    sb->memUsed -= osize;
    return nullptr;
  }
  if (nsize > osize && sb->memUsed - osize + nsize > sb->memLimit) {
    sb->memHit = true;
    return nullptr;
  }
  void *p = std::realloc(ptr, nsize);
  if (p)
    sb->memUsed = sb->memUsed - osize + nsize;
  return p;
}

void countHook(lua_State *L, lua_Debug *ar) {
  Sandbox *sb = sandboxOf(L);
  sb->instrs += kHookEvery;
  if (lua_getinfo(L, "Sl", ar) && isUserSource(ar->source) && ar->currentline > 0) {
    if (ar->source != sb->lastSourcePtr) {
      copyText(sb->lastSource, ar->source);
      sb->lastSourcePtr = ar->source;
    }
    sb->lastLine = ar->currentline;
  }
  char *msg = sb->stopMessage;
  if (sb->instrHit || sb->timeHit) { // stopped once, caught by a pcall: stop again
    lua_pushstring(L, msg);
    lua_error(L);
  }
  if (sb->instrs > sb->instrLimit) {
    sb->instrHit = true;
    std::snprintf(msg, sizeof sb->stopMessage,
                  "model script stopped: it executed more than %llu Lua instructions (the "
                  "limit; an endless loop?)",
                  (unsigned long long)sb->instrLimit);
  } else if (now() - sb->start > sb->secLimit) {
    sb->timeHit = true;
    std::snprintf(msg, sizeof sb->stopMessage,
                  "model script stopped: it ran longer than %g seconds (the limit)", sb->secLimit);
  } else {
    return;
  }
  // From now on the hook runs before every instruction of every thread (new
  // coroutines copy it), so no pcall loop outlives the limit.
  lua_sethook(L, countHook, LUA_MASKCOUNT, 1);
  lua_pushstring(L, msg);
  lua_error(L);
}

/// lua_pcall's message handler: records the first script frame on the stack
/// (or the place a graphc error names) and returns the bare message.
int messageHandler(lua_State *L) {
  Sandbox *sb = sandboxOf(L);
  sb->errLine = 0;
  sb->errSource[0] = 0;
  sb->errVar[0] = 0;
  sb->errNeedle[0] = 0;
  lua_Debug ar;
  char prefix[kTextBytes + 32] = {};
  for (int level = 1; lua_getstack(L, level, &ar); ++level) {
    if (!lua_getinfo(L, "Sl", &ar))
      break;
    if (!isUserSource(ar.source) || ar.currentline <= 0)
      continue;
    copyText(sb->errSource, ar.source);
    sb->errLine = ar.currentline;
    std::snprintf(prefix, sizeof prefix, "%s:%d: ", ar.short_src, ar.currentline);
    break;
  }
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushstring(L, "source");
    lua_rawget(L, 1);
    lua_pushstring(L, "line");
    lua_rawget(L, 1);
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER) {
      copyText(sb->errSource, lua_tostring(L, -2));
      sb->errLine = int(lua_tonumber(L, -1));
    }
    lua_pushstring(L, "var");
    lua_rawget(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING)
      std::snprintf(sb->errVar, sizeof sb->errVar, "%s", lua_tostring(L, -1));
    lua_pushstring(L, "needle");
    lua_rawget(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING)
      std::snprintf(sb->errNeedle, sizeof sb->errNeedle, "%s", lua_tostring(L, -1));
    lua_pushstring(L, "graphc_message");
    lua_rawget(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      lua_pushstring(L, "the script raised an error object that is a table");
    return 1;
  }
  if (lua_type(L, 1) != LUA_TSTRING && lua_type(L, 1) != LUA_TNUMBER) {
    lua_pushfstring(L, "the script raised an error object that is a %s", luaL_typename(L, 1));
    return 1;
  }
  const char *msg = lua_tostring(L, 1);
  size_t n = std::strlen(prefix);
  if (n > 0 && std::strncmp(msg, prefix, n) == 0) {
    lua_pushstring(L, msg + n);
    return 1;
  }
  // luaL_error in a C function the prelude called names the prelude's line.
  if (std::strncmp(msg, "graphc:", 7) == 0) {
    char *end = nullptr;
    std::strtol(msg + 7, &end, 10);
    if (end != msg + 7 && end[0] == ':' && end[1] == ' ') {
      lua_pushstring(L, end + 2);
      return 1;
    }
  }
  lua_pushvalue(L, 1);
  return 1;
}

/// luaO_chunkid for "@name" as the lexer calls it: the name Lua puts before
/// ":line:" in syntax errors. llex.c gives it MAXSRC (80) bytes, not the
/// LUA_IDSIZE (60) of a runtime error's short_src, less 8 for " '...' ".
void chunkId(char *out, size_t outLen, const char *source) {
  constexpr size_t kMaxSrc = 80;
  const char *name = source + 1;
  size_t len = std::strlen(name), keep = kMaxSrc - 8;
  if (len > keep)
    std::snprintf(out, outLen, "...%s", name + (len - keep));
  else
    std::snprintf(out, outLen, "%s", name);
}

/// Raises a syntax error of a loaded chunk (on the stack top) located at the
/// line it names in that chunk.
int raiseLoadError(lua_State *L, const char *source) {
  char id[kTextBytes];
  chunkId(id, sizeof id, source);
  const char *msg = lua_tostring(L, -1);
  size_t n = std::strlen(id);
  int line = 0;
  if (msg && std::strncmp(msg, id, n) == 0 && msg[n] == ':') {
    char *end = nullptr;
    line = int(std::strtol(msg + n + 1, &end, 10));
    if (end && end[0] == ':' && end[1] == ' ')
      msg = end + 2;
  }
  lua_newtable(L);
  lua_pushstring(L, msg ? msg : "cannot load the chunk");
  lua_setfield(L, -2, "graphc_message");
  lua_pushstring(L, source);
  lua_setfield(L, -2, "source");
  lua_pushinteger(L, line > 0 ? line : 1);
  lua_setfield(L, -2, "line");
  return lua_error(L);
}

bool isBytecode(const char *text, size_t n) { return n > 0 && text[0] == LUA_SIGNATURE[0]; }

/// loadstring(s [, name]) without bytecode.
int safeLoadstring(lua_State *L) {
  size_t n = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *name = luaL_optstring(L, 2, s);
  if (isBytecode(s, n))
    return luaL_error(L, "precompiled Lua bytecode is refused in model files");
  if (luaL_loadbuffer(L, s, n, name) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

int writeStderr(lua_State *L) {
  size_t n = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  std::fwrite(s, 1, n, stderr);
  return 0;
}

/// loadUserFile(name, asModule): a chunk from the model's folder. As a
/// module, `a.b` is `DIR/a/b.lua`; otherwise `name` is a path, relative to
/// the folder. Whatever it resolves to (symbolic links followed) must lie
/// inside the folder.
int loadUserFile(lua_State *L) {
  Sandbox *sb = sandboxOf(L);
  const char *name = luaL_checkstring(L, 1);
  int asModule = lua_toboolean(L, 2);
  char rel[PATH_MAX];
  if (asModule) {
    size_t len = std::strlen(name);
    bool ok = len > 0 && len < PATH_MAX - 8 && name[0] != '.';
    for (size_t i = 0; ok && i < len; ++i) {
      char c = name[i];
      ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || (c == '.' && name[i + 1] != '.' && name[i + 1] != 0);
      rel[i] = c == '.' ? '/' : c;
    }
    if (!ok)
      return luaL_error(L,
                        "require '%s': model files can require nn, optim, torch, cunn, cudnn, "
                        "cutorch, image, xlua, paths, or a .lua file in the model's folder",
                        name);
    std::snprintf(rel + len, sizeof rel - len, ".lua");
  } else {
    std::snprintf(rel, sizeof rel, "%s", name);
  }
  char full[PATH_MAX * 2];
  if (rel[0] == '/')
    std::snprintf(full, sizeof full, "%s", rel);
  else
    std::snprintf(full, sizeof full, "%s/%s", sb->dir, rel);
  char real[PATH_MAX];
  struct stat st;
  if (!realpath(full, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (asModule)
      return luaL_error(L,
                        "require '%s': no such module; model files can require nn, optim, "
                        "torch, cunn, cudnn, cutorch, image, xlua, paths, or a .lua file in the "
                        "model's folder (looked for %s)",
                        name, full);
    return luaL_error(L, "cannot open '%s': no such file in the model's folder", name);
  }
  size_t dirLen = std::strlen(sb->dir);
  if (std::strncmp(real, sb->dir, dirLen) != 0 || (real[dirLen] != '/' && dirLen != 1))
    return luaL_error(L,
                      "'%s' is outside the model's folder (%s): model files can only load "
                      "files beside them",
                      name, sb->dir);
  if (size_t(st.st_size) > kMaxFileBytes)
    return luaL_error(L, "'%s' is too large: model files are limited to %d MiB", name,
                      int(kMaxFileBytes >> 20));
  size_t size = size_t(st.st_size);
  char *buf = static_cast<char *>(lua_newuserdata(L, size + 1));
  std::FILE *f = std::fopen(real, "rb");
  size_t got = f ? std::fread(buf, 1, size, f) : 0;
  if (f)
    std::fclose(f);
  if (got != size)
    return luaL_error(L, "cannot read '%s'", name);
  if (isBytecode(buf, size))
    return luaL_error(L, "'%s': precompiled Lua bytecode is refused in model files", name);
  if (size > 0 && buf[0] == '#') // a shebang line: keep the line, drop its text
    for (size_t i = 0; i < size && buf[i] != '\n' && buf[i] != '\r'; ++i)
      buf[i] = i < 2 ? '-' : ' ';
  if (size == 1 && buf[0] == '-')
    buf[0] = ' ';
  lua_pushfstring(L, "@%s", real);
  const char *source = lua_tostring(L, -1);
  if (luaL_loadbuffer(L, buf, size, source) != 0)
    return raiseLoadError(L, source);
  return 1;
}

int openLibrary(lua_State *L, lua_CFunction open, const char *name) {
  lua_pushcfunction(L, open);
  lua_pushstring(L, name);
  lua_call(L, 1, 0);
  return 0;
}

/// Everything that can raise, under one lua_cpcall (argument: the Sandbox).
int runAll(lua_State *L) {
  Sandbox *sb = static_cast<Sandbox *>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  openLibrary(L, luaopen_base, "");
  openLibrary(L, luaopen_table, LUA_TABLIBNAME);
  openLibrary(L, luaopen_string, LUA_STRLIBNAME);
  openLibrary(L, luaopen_math, LUA_MATHLIBNAME);
  openLibrary(L, luaopen_debug, LUA_DBLIBNAME);
  // Only the prelude keeps debug.getinfo (as an upvalue); the script sees no
  // debug, and nothing that loads code from files or bytecode.
  lua_getglobal(L, "debug");
  lua_getfield(L, -1, "getinfo");
  lua_replace(L, -2); // 1: getinfo
  // newproxy makes userdata with __gc, Lua code that lua_close would run.
  for (const char *name : {"debug", "dofile", "loadfile", "load", "loadstring", "newproxy"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_pushcfunction(L, safeLoadstring);
  lua_setglobal(L, "loadstring");

  if (luaL_loadbuffer(L, torch7Prelude(), std::strlen(torch7Prelude()), "=graphc") != 0)
    return lua_error(L);
  lua_pushvalue(L, 1);
  lua_pushcfunction(L, loadUserFile);
  lua_pushvalue(L, LUA_GLOBALSINDEX);
  lua_pushcfunction(L, safeLoadstring);
  lua_pushcfunction(L, writeStderr);
  pushLayerTables(L);
  lua_call(L, 7, 1); // 2: collect
  // The script's command line, as `th script.lua ARGS` gives it: the global
  // `arg` that torch.CmdLine:parse(arg) and lapp read.
  lua_createtable(L, int(sb->args ? sb->args->size() : 0), 1);
  lua_pushstring(L, sb->file);
  lua_rawseti(L, -2, 0);
  if (sb->args)
    for (size_t i = 0; i < sb->args->size(); ++i) {
      lua_pushlstring(L, (*sb->args)[i].data(), (*sb->args)[i].size());
      lua_rawseti(L, -2, int(i + 1));
    }
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, messageHandler);
  const int handler = lua_gettop(L); // 3

  sb->stage = Stage::Syntax;
  sb->start = now();
  lua_sethook(L, countHook, LUA_MASKCOUNT, kHookEvery);
  if (isBytecode(sb->text, sb->textLen)) {
    lua_pushstring(L, "precompiled Lua bytecode is refused in model files; give the source");
    return lua_error(L);
  }
  if (luaL_loadbuffer(L, sb->text, sb->textLen, sb->chunkName) != 0)
    return lua_error(L);
  sb->stage = Stage::Run;
  if (int status = lua_pcall(L, 0, LUA_MULTRET, handler); status != 0)
    return lua_error(L);
  const int results = lua_gettop(L) - handler;
  sb->stage = Stage::Collect;
  lua_pushvalue(L, 2);
  lua_pushinteger(L, results);
  for (int i = 1; i <= 2; ++i) {
    if (results >= i)
      lua_pushvalue(L, handler + i);
    else
      lua_pushnil(L);
  }
  if (lua_pcall(L, 3, 1, handler) != 0)
    return lua_error(L);
  sb->resultRef = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

// --- C++ after Lua: reading the result, checking it ------------------------

/// A value read from a result array.
struct LuaValue {
  int type = LUA_TNIL;
  double number = 0;
  bool boolean = false;
  std::string str;
  std::optional<nn::TensorArg> tensor; ///< a tensor with values (LuaTorch7.cpp's flatten)
};

std::string formatNumber(double x) {
  if (std::isnan(x))
    return "nan";
  return fmt::format("{}", x);
}

std::string describe(const LuaValue &v) {
  switch (v.type) {
  case LUA_TNUMBER: return formatNumber(v.number);
  case LUA_TBOOLEAN: return v.boolean ? "true" : "false";
  case LUA_TSTRING: return "string " + quote(v.str);
  case LUA_TNIL: return "nil";
  case LUA_TTABLE: return v.tensor ? v.tensor->str() : "table";
  case LUA_TFUNCTION: return "function";
  default: return "value";
  }
}

/// Reads entries of the table at stack index `table` with raw, non-raising calls.
class Reader {
public:
  Reader(lua_State *L, int table) : L_(L), table_(table) {}

  LuaValue at(int i) {
    lua_rawgeti(L_, table_, i);
    LuaValue v;
    v.type = lua_type(L_, -1);
    if (v.type == LUA_TNUMBER)
      v.number = lua_tonumber(L_, -1);
    else if (v.type == LUA_TBOOLEAN)
      v.boolean = lua_toboolean(L_, -1);
    else if (v.type == LUA_TSTRING) {
      size_t n = 0;
      const char *s = lua_tolstring(L_, -1, &n);
      v.str.assign(s, n);
    } else if (v.type == LUA_TTABLE) {
      lua_rawgeti(L_, -1, 1);
      bool isTensor =
          lua_type(L_, -1) == LUA_TSTRING && std::strcmp(lua_tostring(L_, -1), "tensor") == 0;
      lua_pop(L_, 1);
      if (isTensor) { // {'tensor', rank, sizes..., values...}
        Reader t(L_, lua_gettop(L_));
        nn::TensorArg arg;
        int rank = int(t.number(2));
        int64_t count = 1;
        for (int i = 0; i < rank; ++i) {
          arg.sizes.push_back(int64_t(t.number(3 + i)));
          count *= arg.sizes.back();
        }
        for (int64_t i = 0; i < count; ++i)
          arg.values.push_back(t.number(3 + rank + int(i)));
        v.tensor = std::move(arg);
      }
    }
    lua_pop(L_, 1);
    return v;
  }
  double number(int i) { return at(i).number; }
  std::string string(int i) { return at(i).str; }

  /// Runs `f(Reader)` over the table at entry i (left on the stack meanwhile).
  template <class F> void nested(int i, F &&f) {
    lua_rawgeti(L_, table_, i);
    Reader inner(L_, lua_gettop(L_));
    f(inner);
    lua_pop(L_, 1);
  }

private:
  lua_State *L_;
  int table_;
};

struct Failure {
  Diag diag;
};

class Builder {
public:
  Builder(std::string_view text, std::string file, std::string mainSource)
      : file_(std::move(file)), mainSource_(std::move(mainSource)) {
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t end = text.find('\n', pos);
      std::string_view l = text.substr(pos, end == std::string_view::npos ? end : end - pos);
      if (!l.empty() && l.back() == '\r')
        l.remove_suffix(1);
      lines_.push_back(l);
      if (end == std::string_view::npos)
        break;
      pos = end + 1;
    }
  }

  /// A location in `source` ("@path") at `line`; the column is where `needle`
  /// is written in that line of the main file, else its first non-blank.
  Diag at(const std::string &source, int line, std::string_view needle, std::string message) {
    Diag d;
    d.file = source == mainSource_ || source.empty() ? file_ : source.substr(1);
    d.line = std::max(line, 1);
    d.col = 1;
    d.message = std::move(message);
    if (source == mainSource_ || source.empty()) {
      std::string_view l = lineText(d.line);
      size_t col = needle.empty() ? std::string_view::npos : l.find(needle);
      if (col == std::string_view::npos)
        col = l.find_first_not_of(" \t");
      d.col = col == std::string_view::npos ? 1 : int(col) + 1;
    }
    return d;
  }

  std::string_view lineText(int line) const {
    return line >= 1 && size_t(line) <= lines_.size() ? lines_[size_t(line) - 1]
                                                      : std::string_view();
  }

  /// The last line of the main file that assigns `name` (`name =`, `local
  /// name =`), or with `assignment` false, where `name` is first written.
  std::optional<nn::SourceLoc> findName(const std::string &name, bool assignment) const {
    std::optional<nn::SourceLoc> found;
    auto word = [](char c) { return std::isalnum((unsigned char)c) || c == '_'; };
    for (size_t i = 0; i < lines_.size(); ++i) {
      std::string_view l = lines_[i];
      for (size_t p = l.find(name); p != std::string_view::npos; p = l.find(name, p + 1)) {
        if ((p > 0 && word(l[p - 1])) || (p + name.size() < l.size() && word(l[p + name.size()])))
          continue;
        size_t after = l.find_first_not_of(" \t", p + name.size());
        bool assigns = after != std::string_view::npos && l[after] == '=' &&
                       (after + 1 >= l.size() || l[after + 1] != '=');
        if (assignment && !assigns)
          continue;
        if (!assignment)
          return nn::SourceLoc{int(i) + 1, int(p) + 1};
        found = nn::SourceLoc{int(i) + 1, int(l.find_first_not_of(" \t")) + 1};
        break;
      }
    }
    return found;
  }

  Diag atName(const std::string &name, std::string message, bool assignment) const {
    nn::SourceLoc loc = findName(name, assignment).value_or(nn::SourceLoc{1, 1});
    return Diag{file_, loc.line, loc.col, std::move(message)};
  }

  /// Reads one module of the flat model array from `pos` on.
  nn::Module module(Reader &r, int &pos) {
    std::string kind = r.string(pos), name = r.string(pos + 1), source = r.string(pos + 2);
    int line = int(r.number(pos + 3));
    int nargs = int(r.number(pos + 4));
    pos += 5;
    std::vector<LuaValue> args;
    for (int i = 0; i < nargs; ++i)
      args.push_back(r.at(pos + i));
    pos += nargs;
    bool ceil = r.at(pos).boolean;
    std::map<std::string, nn::Init> init;
    for (const char *tensor : {"weight", "bias"}) {
      LuaValue kind = r.at(pos + 1);
      if (kind.type == LUA_TSTRING)
        init[tensor] = {kind.str == "normal", r.number(pos + 2), r.number(pos + 3)};
      pos += 3;
    }
    int children = int(r.number(pos + 1));
    pos += 2;
    std::string needle = name + "(";
    auto fail = [&](std::string message) -> Failure {
      Diag d = at(source, line, needle, std::move(message));
      if (d.col == 1 && lineText(d.line).find(kind + "(") != std::string_view::npos)
        d.col = int(lineText(d.line).find(kind + "(")) + 1;
      return Failure{std::move(d)};
    };
    nn::Module m = construct(kind, name, args, fail);
    m.ceil = ceil; // the tracer checks it against the input size
    m.init = std::move(init);
    m.loc = {line, at(source, line, needle, "").col};
    for (int i = 0; i < children; ++i)
      m.children.push_back(module(r, pos));
    return m;
  }

  template <class Fail>
  nn::Module construct(const std::string &kind, const std::string &name, std::vector<LuaValue> args,
                       Fail &&fail) {
    const Ctor *c = nn::findLayer(kind);
    if (!c)
      throw fail(fmt::format("{} is not a layer graphc can compile", name));
    bool batchView = c->kind == nn::Kind::View && args.size() >= 2 && args[0].type == LUA_TNUMBER &&
                     args[0].number == -1;
    if (batchView)
      args.erase(args.begin());
    if (args.size() < c->minArgs || args.size() > c->maxArgs + c->unlisted) {
      std::string expects =
          c->maxArgs == 0 ? "no arguments"
          : c->minArgs == c->maxArgs
              ? fmt::format("{} argument{} {}", c->minArgs, c->minArgs == 1 ? "" : "s", c->params)
          : c->minArgs == 0
              ? fmt::format("at most {} argument{} {}", c->maxArgs, c->maxArgs == 1 ? "" : "s",
                            c->params)
              : fmt::format("{} to {} arguments {}", c->minArgs, c->maxArgs, c->params);
      throw fail(fmt::format("{} expects {}, got {}", name, expects, args.size()));
    }
    auto argName = [&](size_t i) {
      std::string_view params = c->params;
      std::vector<std::string_view> names;
      size_t p = 0;
      while (p < params.size()) {
        size_t start = params.find_first_not_of("([ ,])", p);
        if (start == std::string_view::npos)
          break;
        size_t end = params.find_first_of("([ ,])", start);
        names.push_back(params.substr(start, end - start));
        p = end;
      }
      size_t shown = i + (batchView ? 2 : 1);
      if (c->kind == nn::Kind::View || c->kind == nn::Kind::Reshape || i >= names.size())
        return fmt::format("{} argument {}", name, shown);
      return fmt::format("{} argument {} ({})", name, shown, names[i]);
    };
    auto num = [&](size_t i) {
      if (args[i].type != LUA_TNUMBER)
        throw fail(fmt::format("{} must be a number, got {}", argName(i), describe(args[i])));
      return args[i].number;
    };
    auto integer = [&](size_t i, double min, const char *what) {
      double d = num(i);
      if (!(d >= min && d <= kMaxSize && d == std::floor(d)))
        throw fail(
            fmt::format("{} must be a {} integer, got {}", argName(i), what, formatNumber(d)));
      return int64_t(d);
    };
    auto size = [&](size_t i) { return integer(i, 1, "positive"); };
    auto padding = [&](size_t i) { return integer(i, 0, "non-negative"); };
    auto boolean = [&](size_t i) {
      if (args[i].type != LUA_TBOOLEAN)
        throw fail(fmt::format("{} must be a boolean, got {}", argName(i), describe(args[i])));
      return args[i].boolean;
    };
    size_t n = args.size();
    if (c->maxArgs == 0) // no arguments to check
      return nn::layer(c->kind);
    switch (c->kind) {
    case nn::Kind::View:
    case nn::Kind::Reshape: {
      std::vector<int64_t> dims;
      size_t count = n;
      if (c->kind == nn::Kind::Reshape && n > 1 && args[n - 1].type == LUA_TBOOLEAN)
        --count; // Reshape(..., batchMode)
      if (count > 4)
        throw fail(fmt::format("{} expects 1 to 4 arguments {}, got {}", name, c->params, n));
      for (size_t i = 0; i < count; ++i)
        dims.push_back(size(i));
      if (c->kind == nn::Kind::Reshape)
        return nn::Reshape(dims);
      nn::Module m = nn::View(dims[0]);
      m.args.assign(dims.begin(), dims.end());
      return m;
    }
    case nn::Kind::Linear:
      if (n == 3 && !boolean(2))
        throw fail("nn.Linear without bias (argument 3 false) is not supported");
      return nn::Linear(size(0), size(1));
    case nn::Kind::ReLU: {
      nn::Module m = nn::ReLU();
      m.inplace = n == 1 && boolean(0);
      return m;
    }
    case nn::Kind::Threshold: {
      // Torch7: `th or 1e-6`, `v or 0`, and in place only when v <= th.
      double th = n > 0 && args[0].type != LUA_TNIL ? num(0) : 1e-6;
      double v = n > 1 && args[1].type != LUA_TNIL ? num(1) : 0;
      bool ip = n > 2 && args[2].type != LUA_TNIL && boolean(2);
      if (!std::isfinite(th) || std::isnan(v))
        throw fail(fmt::format("{} threshold must be finite and value a number, got {} and {}",
                               name, formatNumber(th), formatNumber(v)));
      if (ip && v > th)
        throw fail(fmt::format("{}: in-place processing requires value ({}) not exceed "
                               "threshold ({})",
                               name, formatNumber(v), formatNumber(th)));
      return nn::Threshold(th, v, ip);
    }
    case nn::Kind::MulConstant:
    case nn::Kind::AddConstant: {
      double k = num(0);
      if (!std::isfinite(k))
        throw fail(fmt::format("{} must be finite, got {}", argName(0), formatNumber(k)));
      bool ip = n > 1 && args[1].type != LUA_TNIL && boolean(1);
      return c->kind == nn::Kind::MulConstant ? nn::MulConstant(k, ip) : nn::AddConstant(k, ip);
    }
    case nn::Kind::CAddTable:
      return nn::CAddTable(n == 1 && args[0].type != LUA_TNIL && boolean(0));
    case nn::Kind::Concat: return nn::Concat(size(0));
    case nn::Kind::JoinTable: {
      double d = num(0);
      if (!(std::abs(d) <= kMaxSize && d == std::floor(d) && d != 0))
        throw fail(
            fmt::format("{} must be a non-zero integer, got {}", argName(0), formatNumber(d)));
      return nn::JoinTable(int64_t(d), n > 1 && args[1].type != LUA_TNIL ? size(1) : -1);
    }
    case nn::Kind::Dropout: {
      double p = n == 0 || args[0].type == LUA_TNIL ? 0.5 : num(0);
      if (!(p >= 0 && p < 1))
        throw fail(fmt::format("{} must be in [0, 1), got {}", argName(0), formatNumber(p)));
      return nn::Dropout(p);
    }
    case nn::Kind::SpatialConvolution:
    case nn::Kind::SpatialConvolutionMM: {
      int64_t nIn = size(0), nOut = size(1), kW = size(2), kH = size(3);
      int64_t dW = n > 4 ? size(4) : 1, dH = n > 5 ? size(5) : 1;
      int64_t padW = n > 6 ? padding(6) : 0, padH = n > 7 ? padding(7) : -1;
      return c->kind == nn::Kind::SpatialConvolution
                 ? nn::SpatialConvolution(nIn, nOut, kW, kH, dW, dH, padW, padH)
                 : nn::SpatialConvolutionMM(nIn, nOut, kW, kH, dW, dH, padW, padH);
    }
    case nn::Kind::SpatialMaxPooling: {
      int64_t kW = size(0), kH = size(1);
      int64_t dW = n > 2 ? size(2) : -1, dH = n > 3 ? size(3) : -1;
      int64_t padW = n > 4 ? padding(4) : 0, padH = n > 5 ? padding(5) : 0;
      return nn::SpatialMaxPooling(kW, kH, dW, dH, padW, padH);
    }
    case nn::Kind::SpatialZeroPadding: { // Torch7: the others default to pad_l
      auto pad = [&](size_t i) -> int64_t {
        if (i > 0 && (n <= i || args[i].type == LUA_TNIL))
          return int64_t(num(0));
        double d = num(i);
        if (!(std::abs(d) <= kMaxSize && d == std::floor(d)))
          throw fail(fmt::format("{} must be an integer, got {}", argName(i), formatNumber(d)));
        return int64_t(d);
      };
      int64_t l = pad(0);
      return nn::SpatialZeroPadding(l, pad(1), pad(2), pad(3));
    }
    case nn::Kind::Padding: {
      double d = num(0), p = num(1);
      if (!(d >= 1 && d <= 8 && d == std::floor(d)))
        throw fail(
            fmt::format("{} must be a dimension from 1 to 8, got {}", argName(0), formatNumber(d)));
      if (!(std::abs(p) <= kMaxSize && p == std::floor(p)))
        throw fail(fmt::format("{} must be an integer, got {}", argName(1), formatNumber(p)));
      int64_t nInputDim = n > 2 && args[2].type != LUA_TNIL ? size(2) : -1;
      double value = n > 3 && args[3].type != LUA_TNIL ? num(3) : 0;
      if (!std::isfinite(value))
        throw fail(fmt::format("{} must be finite, got {}", argName(3), formatNumber(value)));
      if (n > 4 && args[4].type != LUA_TNIL && num(4) != 1)
        throw fail(fmt::format("{}: padding inside the dimension (index {}) is not supported", name,
                               formatNumber(num(4))));
      return nn::Padding(int64_t(d), int64_t(p), nInputDim, value);
    }
    case nn::Kind::BatchNormalization:
    case nn::Kind::SpatialBatchNormalization: { // Torch7: `eps or 1e-5`, `momentum or 0.1`
      double eps = n > 1 && args[1].type != LUA_TNIL ? num(1) : 1e-5;
      double momentum = n > 2 && args[2].type != LUA_TNIL ? num(2) : 0.1;
      bool affine = n > 3 && args[3].type != LUA_TNIL ? boolean(3) : true;
      if (!(eps > 0 && std::isfinite(eps)))
        throw fail(fmt::format("{} must be positive, got {}", argName(1), formatNumber(eps)));
      if (!(momentum >= 0 && momentum <= 1))
        throw fail(fmt::format("{} must be in [0, 1], got {}", argName(2), formatNumber(momentum)));
      return c->kind == nn::Kind::BatchNormalization
                 ? nn::BatchNormalization(size(0), eps, momentum, affine)
                 : nn::SpatialBatchNormalization(size(0), eps, momentum, affine);
    }
    case nn::Kind::SpatialLPPooling: {
      double p = num(1);
      if (!(p > 0 && std::isfinite(p)))
        throw fail(fmt::format("{} must be positive, got {}", argName(1), formatNumber(p)));
      int64_t kW = size(2), kH = size(3);
      int64_t dW = n > 4 && args[4].type != LUA_TNIL ? size(4) : -1;
      int64_t dH = n > 5 && args[5].type != LUA_TNIL ? size(5) : -1;
      return nn::SpatialLPPooling(size(0), p, kW, kH, dW, dH);
    }
    case nn::Kind::SpatialSubtractiveNormalization: { // Torch7: `nInputPlane or 1`, 9x9 ones
      int64_t planes = n > 0 && args[0].type != LUA_TNIL ? size(0) : 1;
      if (n < 2 || args[1].type == LUA_TNIL)
        return nn::SpatialSubtractiveNormalization(planes);
      if (!args[1].tensor)
        throw fail(fmt::format("{} must be a tensor such as image.gaussian1D(7) or "
                               "torch.ones(9, 9), got {}",
                               argName(1), describe(args[1])));
      const nn::TensorArg &k = *args[1].tensor;
      if (k.sizes.size() != 1 && k.sizes.size() != 2)
        throw fail(fmt::format("{}: the averaging kernel must be 2D or 1D, got {}", name, k.str()));
      if (k.sizes[0] % 2 == 0 || (k.sizes.size() == 2 && k.sizes[1] % 2 == 0))
        throw fail(
            fmt::format("{}: the averaging kernel must have odd sizes, got {}", name, k.str()));
      double sum = 0;
      for (double x : k.values)
        sum += x;
      if (!std::isfinite(sum) || sum == 0)
        throw fail(fmt::format("{}: the averaging kernel's elements must sum to a finite, "
                               "non-zero number (Torch7 divides by it), got {}",
                               name, formatNumber(sum)));
      return nn::SpatialSubtractiveNormalization(planes, k);
    }
    case nn::Kind::SpatialConvolutionMap: {
      if (!args[0].tensor)
        throw fail(fmt::format("{} must be a connection table such as nn.tables.full(3, 16) or "
                               "nn.tables.oneToOne(3), got {}",
                               argName(0), describe(args[0])));
      const nn::TensorArg &t = *args[0].tensor;
      if (t.sizes.size() != 2 || t.sizes[1] != 2)
        throw fail(fmt::format("{} must be a [connections, 2] table, got {}", argName(0), t.str()));
      std::map<double, int64_t> fanIn;
      double nOut = 0;
      for (size_t i = 0; i < t.values.size(); ++i) {
        double x = t.values[i];
        if (!(x >= 1 && x <= 65536 && x == std::floor(x)))
          throw fail(fmt::format("{} holds {}, not a plane number (1-based)", argName(0),
                                 formatNumber(x)));
        if (i % 2 == 1) {
          ++fanIn[x];
          nOut = std::max(nOut, x);
        }
      }
      // Torch7 draws each output plane's weights in ±1/sqrt(kW kH inputs):
      // one range per tensor needs as many inputs for every output plane.
      for (double o = 1; o <= nOut; ++o)
        if (fanIn[o] != fanIn[nOut])
          throw fail(fmt::format("{}: output plane {} has {} input connections and plane {} "
                                 "has {}; graphc supports tables with the same number for every "
                                 "output plane (nn.tables.full, nn.tables.oneToOne)",
                                 name, formatNumber(o), fanIn[o], formatNumber(nOut), fanIn[nOut]));
      int64_t kW = size(1), kH = size(2);
      int64_t dW = n > 3 && args[3].type != LUA_TNIL ? size(3) : 1;
      int64_t dH = n > 4 && args[4].type != LUA_TNIL ? size(4) : 1;
      return nn::SpatialConvolutionMap(t, kW, kH, dW, dH);
    }
    case nn::Kind::SpatialAveragePooling: { // Torch7's strides default to 1, not to the kernel
      int64_t kW = size(0), kH = size(1);
      int64_t dW = n > 2 ? size(2) : 1, dH = n > 3 ? size(3) : 1;
      int64_t padW = n > 4 ? padding(4) : 0, padH = n > 5 ? padding(5) : 0;
      return nn::SpatialAveragePooling(kW, kH, dW, dH, padW, padH);
    }
    default: break;
    }
    throw fail(fmt::format("{} has no argument checks in LuaModel.cpp (a layers.def row with "
                           "arguments needs them)",
                           name));
  }

  /// Fills `spec` from the result array on the stack top.
  void read(lua_State *L, nn::ModelSpec &spec) {
    Reader r(L, lua_gettop(L));
    if (r.at(1).type != LUA_TTABLE)
      throw Failure{atName("model",
                           "no 'model' defined; expected e.g. model = nn.Sequential(), "
                           "a global 'net', or `return model`",
                           true)};
    r.nested(1, [&](Reader &flat) {
      int pos = 1;
      nn::Module root = module(flat, pos);
      static_cast<nn::Module &>(spec.model) = std::move(root);
    });
    spec.modelLoc = findName("model", true).value_or(spec.model.loc);

    if (r.at(3).type == LUA_TSTRING) {
      std::string kind = r.string(3);
      nn::Criterion crit;
      for (const CriterionName &c : kCriteria)
        if (kind == c.name)
          crit.kind = c.kind;
      Diag d = at(r.string(4), int(r.number(5)), "nn." + kind + "(", "");
      crit.loc = {d.line, d.col};
      crit.sizeAverage = r.at(12).type != LUA_TBOOLEAN || r.at(12).boolean;
      spec.criterion = crit;
    }

    if (r.at(6).type == LUA_TSTRING) {
      nn::Optimizer opt;
      opt.name = r.string(6);
      Diag d = atName("optimizer", "", true);
      opt.loc = {d.line, d.col};
      if (r.at(7).type == LUA_TSTRING)
        readConfig(r, opt);
      spec.optimizer = opt;
    }

    if (r.at(10).type == LUA_TTABLE) {
      int n = int(r.number(11));
      r.nested(10, [&](Reader &dims) {
        ir::Shape shape;
        for (int i = 1; i <= n; ++i)
          shape.push_back(int64_t(dims.number(i)));
        spec.input = shape;
      });
    }
  }

  void readConfig(Reader &r, nn::Optimizer &opt) {
    static const std::map<std::string, std::vector<std::string>> keys = {
        {"sgd",
         {"learningRate", "learningRateDecay", "weightDecay", "momentum", "dampening", "nesterov"}},
        {"adagrad", {"learningRate", "learningRateDecay", "weightDecay"}},
        {"adam", {"learningRate", "learningRateDecay", "beta1", "beta2", "epsilon", "weightDecay"}},
        {"rmsprop", {"learningRate", "alpha", "epsilon", "weightDecay", "initialMean"}},
        {"adadelta", {"rho", "eps", "weightDecay"}},
        {"nag", {"learningRate", "learningRateDecay", "weightDecay", "momentum", "dampening"}},
    };
    std::string configName = r.string(7);
    int n = int(r.number(9));
    const std::vector<std::string> &allowed = keys.at(opt.name);
    r.nested(8, [&](Reader &flat) {
      for (int i = 1; i + 1 <= n; i += 2) {
        std::string key = flat.string(i);
        LuaValue v = flat.at(i + 1);
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
          throw Failure{
              atName(key,
                     fmt::format("unknown {} key {} for optim.{} (allowed: {})", configName,
                                 quote(key), opt.name, fmt::join(allowed, ", ")),
                     false)};
        if (v.type == LUA_TBOOLEAN && key == "nesterov") {
          opt.config[key] = v.boolean ? 1 : 0;
          continue;
        }
        if (v.type != LUA_TNUMBER || !std::isfinite(v.number))
          throw Failure{atName(key,
                               fmt::format("{} key {} must be a finite number, got {}", configName,
                                           quote(key), describe(v)),
                               false)};
        opt.config[key] = v.number;
      }
    });
  }

private:
  std::vector<std::string_view> lines_;
  std::string file_;
  std::string mainSource_;
};

/// A Lua message fit for one diagnostic line. The token a syntax error is
/// `near` (Lua's last words, which can be a whole multi-line or 10 MB string)
/// is quoted as graphc quotes text: control and non-ASCII bytes escaped, cut
/// after 40 bytes; it also becomes `needle`, the text the column points at.
/// Elsewhere control bytes are escaped, and the whole is cut after 500 bytes.
std::string oneLine(const std::string &message, std::string &needle) {
  constexpr std::string_view kNear = " near '";
  std::string_view body = message, token;
  size_t near = message.rfind(kNear);
  if (near != std::string::npos && message.size() >= near + kNear.size() + 1 &&
      message.back() == '\'') {
    body = std::string_view(message).substr(0, near);
    token = std::string_view(message).substr(near + kNear.size());
    token.remove_suffix(1);
  }
  std::string out;
  for (char ch : body.substr(0, 500)) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += ch;
  }
  if (body.size() > 500)
    out += "...";
  if (near != std::string::npos && body.size() == near) {
    out += " near " + quote(token);
    if (token != "<eof>" && token.find('\n') == std::string_view::npos)
      needle = std::string(token.substr(0, 120));
  }
  return out;
}

struct LuaCloser {
  void operator()(lua_State *L) const { lua_close(L); }
};

} // namespace

Expected<nn::ModelSpec> parseModel(std::string_view textIn, const std::string &file,
                                   const LuaLimits &limits, const std::vector<std::string> &args) {
  std::string text(textIn);
  if (text.starts_with("\xEF\xBB\xBF"))
    text.replace(0, 3, "   ");
  if (!text.empty() && text[0] == '#') // a shebang line: keep the line, drop its text
    for (size_t i = 0; i < text.size() && text[i] != '\n' && text[i] != '\r'; ++i)
      text[i] = i < 2 ? '-' : ' ';
  if (text == "-")
    text = " ";

  std::error_code ec;
  std::filesystem::path folder = std::filesystem::path(file).parent_path();
  if (folder.empty())
    folder = ".";
  std::string dir =
      std::filesystem::weakly_canonical(std::filesystem::absolute(folder, ec), ec).string();
  std::string chunkName = "@" + file;

  Sandbox sb;
  sb.memLimit = limits.memoryBytes;
  sb.instrLimit = limits.instructions;
  sb.secLimit = limits.seconds;
  sb.text = text.data();
  sb.textLen = text.size();
  sb.chunkName = chunkName.c_str();
  sb.dir = dir.c_str();
  sb.file = file.c_str();
  sb.args = &args;

  std::unique_ptr<lua_State, LuaCloser> state(lua_newstate(sandboxAlloc, &sb));
  if (!state)
    return Diag{file, 0, 0, "cannot start the Lua interpreter: out of memory"};
  lua_State *L = state.get();
  Builder builder(text, file, chunkName);

  int status = lua_cpcall(L, runAll, &sb);
  if (status != 0) {
    std::string message = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    std::string source = sb.errSource;
    int line = sb.errLine;
    if (sb.memHit || status == LUA_ERRMEM) {
      message = fmt::format("model script stopped: it used more than {} MiB of memory (the limit)",
                            sb.memLimit >> 20);
      source = sb.lastSource;
      line = sb.lastLine;
    } else if (sb.stage == Stage::Setup) {
      GRAPHC_CHECK(false, "graphc's Lua prelude failed: {}", message);
    } else if (sb.stage == Stage::Syntax) {
      // "file:LINE: message near 'x'", as luaO_chunkid names the chunk.
      char id[kTextBytes];
      chunkId(id, sizeof id, chunkName.c_str());
      source = chunkName;
      line = 1;
      if (message.starts_with(std::string(id) + ":")) {
        char *end = nullptr;
        const char *digits = message.c_str() + std::strlen(id) + 1;
        long l = std::strtol(digits, &end, 10);
        if (end != digits && end[0] == ':' && end[1] == ' ') {
          line = int(l);
          message = end + 2;
        }
      }
    }
    std::string needle = sb.errNeedle;
    message = oneLine(message, needle);
    if (!needle.empty() && needle != sb.errNeedle) {
      // Only a token written once in the line says where the parser stopped.
      std::string_view l = builder.lineText(line);
      size_t first = l.find(needle);
      if (first == std::string_view::npos || l.find(needle, first + 1) != std::string_view::npos)
        needle.clear();
    }
    if (line <= 0 && sb.errVar[0])
      return builder.atName(sb.errVar, message, true);
    if (line <= 0)
      return builder.at(chunkName, 1, "", message);
    return builder.at(source, line, needle, message);
  }

  nn::ModelSpec spec;
  spec.file = file;
  lua_rawgeti(L, LUA_REGISTRYINDEX, sb.resultRef);
  try {
    builder.read(L, spec);
  } catch (const Failure &f) {
    return f.diag;
  }
  return spec;
}

Expected<std::string> readModelText(const std::string &path) {
  auto cannot = [&](const std::string &why) {
    return Diag{path, 0, 0, fmt::format("cannot open {}: {}", path, why)};
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return cannot("is a directory");
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return cannot(std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  bool tooLarge = false, failed = false;
  for (;;) {
    size_t n = std::fread(buf, 1, sizeof buf, f);
    text.append(buf, n);
    if (text.size() > kMaxFileBytes) {
      tooLarge = true;
      break;
    }
    if (n < sizeof buf) {
      failed = std::ferror(f);
      break;
    }
  }
  int err = errno;
  std::fclose(f);
  if (failed)
    return cannot(std::strerror(err));
  if (tooLarge)
    return Diag{
        path, 1, 1,
        fmt::format("file too large: model files are limited to {} MiB", kMaxFileBytes >> 20)};
  return text;
}

Expected<nn::ModelSpec> loadModel(const std::string &path, const LuaLimits &limits,
                                  const std::vector<std::string> &args) {
  auto text = readModelText(path);
  if (!text)
    return text.diag();
  return parseModel(*text, path, limits, args);
}

} // namespace graphc::frontend
