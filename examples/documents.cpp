// SPDX-License-Identifier: MIT
// examples/documents.cpp: a document stream into a search index, in the shape of an embedding
// pipeline (the Python reference's document example used sentence-transformers on a GPU).
//
//   example_documents [--dir DIR] [--query TEXT]...
//
// Reads every file in DIR (default /usr/share/common-licenses, which every Debian system has):
//
//   documents (calling thread) -> passages + batch (2 worker processes, fused) -> embed
//   (1 process, like a model on a GPU) -> build_index (a thread of the calling process)
//
// - passages splits a document into passages of about 60 words, at paragraph breaks where it
//   can; batch, fused into the same workers, groups them by 16 (a model wants batches);
// - embed turns each passage into a 256-dimension unit vector: words hashed into buckets with
//   signs, weighted 1 + log(count) (feature hashing: a deterministic stand-in for a model);
// - build_index keeps the vectors and answers the queries by cosine similarity, best 3 each.
// Exits 1 unless each query's best passage contains one of the query's words.

#include <plumb/plumb.hpp>

#include "support/cli.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kDimensions = 256;

struct Document {
  std::string name;
  std::string text;
};

struct Passage {
  std::string document;
  std::uint32_t index = 0;  // position in its document
  std::string text;
};

struct Embedded {
  std::string document;
  std::uint32_t index = 0;
  std::string text;
  std::vector<float> vector;  // kDimensions, unit length
};

struct Hit {
  std::string query;
  std::string document;
  std::uint32_t passage = 0;
  float score = 0;
  std::string text;
};

struct Index {
  std::size_t passages = 0;
  std::size_t documents = 0;
  std::vector<Hit> hits;  // best 3 per query, queries in order
};

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  for (const char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      out.push_back(std::exchange(word, {}));
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

// Feature hashing: each word of 3+ letters adds ±1 to one of kDimensions buckets (FNV-1a picks
// the bucket and the sign); counts are damped to 1 + log(count), and the vector normalized.
std::vector<float> embed_text(std::string_view text) {
  std::map<std::string, int> counts;
  for (std::string& word : words(text)) {
    if (word.size() >= 3) ++counts[std::move(word)];
  }
  std::vector<float> vector(kDimensions);
  for (const auto& [word, count] : counts) {
    std::uint64_t hash = 14695981039346656037ULL;
    for (const char c : word) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    const float sign = (hash >> 63) != 0 ? -1.0F : 1.0F;
    vector[hash % kDimensions] += sign * (1.0F + std::log(static_cast<float>(count)));
  }
  float norm = 0;
  for (const float x : vector) norm += x * x;
  if (norm > 0) {
    for (float& x : vector) x /= std::sqrt(norm);
  }
  return vector;
}

// ---------------------------------------------------------------------------------------------
// The stages.

plumb::Generator<Document> documents(std::string dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    // Skip links (GPL -> GPL-3): each text once.
    if (entry.is_regular_file() && !entry.is_symlink()) files.push_back(entry.path());
  }
  if (files.empty()) throw std::runtime_error("documents: no files in '" + dir + "'");
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    std::ifstream in(file);
    std::ostringstream text;
    text << in.rdbuf();
    Document document{file.filename().string(), std::move(text).str()};
    co_yield std::move(document);
  }
}

// Passages of about `size` words: a paragraph break ends one once it has half that many.
plumb::Generator<Passage> passages(plumb::Stream<Document> in, std::size_t size) {
  for (const Document& document : in) {
    std::uint32_t index = 0;
    std::string text;
    std::size_t count = 0;
    std::istringstream lines(document.text);
    for (std::string line; std::getline(lines, line);) {
      const bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
      if (!blank) {
        text += line;
        text += '\n';
        count += words(line).size();
      }
      if (count >= size || (blank && count >= size / 2)) {
        Passage passage{document.name, index++, std::exchange(text, {})};
        co_yield std::move(passage);
        count = 0;
      }
    }
    if (count > 0) {
      Passage passage{document.name, index, std::move(text)};
      co_yield std::move(passage);
    }
  }
}

plumb::Generator<std::vector<Passage>> batch(plumb::Stream<Passage> in, std::size_t size) {
  std::vector<Passage> batch;
  for (Passage& passage : in) {
    batch.push_back(std::move(passage));
    if (batch.size() == size) {
      std::vector<Passage> full = std::exchange(batch, {});
      co_yield std::move(full);
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

plumb::Generator<std::vector<Embedded>> embed(plumb::Stream<std::vector<Passage>> in) {
  for (std::vector<Passage>& batch : in) {
    std::vector<Embedded> out;
    out.reserve(batch.size());
    for (Passage& passage : batch) {
      std::vector<float> vector = embed_text(passage.text);
      out.push_back({std::move(passage.document), passage.index, std::move(passage.text),
                     std::move(vector)});
    }
    co_yield std::move(out);
  }
}

Index build_index(plumb::Stream<std::vector<Embedded>> in, std::vector<std::string> queries) {
  std::vector<Embedded> all;
  for (std::vector<Embedded>& batch : in) {
    for (Embedded& embedded : batch) all.push_back(std::move(embedded));
  }
  Index result;
  result.passages = all.size();
  std::vector<std::string> names;
  for (const Embedded& embedded : all) names.push_back(embedded.document);
  std::sort(names.begin(), names.end());
  result.documents = static_cast<std::size_t>(std::unique(names.begin(), names.end()) - names.begin());
  for (const std::string& query : queries) {
    const std::vector<float> target = embed_text(query);
    std::vector<std::pair<float, const Embedded*>> scored;
    for (const Embedded& embedded : all) {
      float dot = 0;
      for (std::size_t d = 0; d < kDimensions; ++d) dot += target[d] * embedded.vector[d];
      scored.emplace_back(dot, &embedded);
    }
    const std::size_t best = std::min<std::size_t>(3, scored.size());
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(best),
                      scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < best; ++i) {
      const Embedded& top = *scored[i].second;
      result.hits.push_back({query, top.document, top.index, scored[i].first, top.text});
    }
  }
  return result;
}

std::string one_line(std::string text, std::size_t width) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  if (text.size() > width) text = text.substr(0, width - 3) + "...";
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/usr/share/common-licenses";
  // Replaced by the --query options, when there are any.
  std::vector<std::string> queries{"disclaimer of warranty", "patent license granted to you",
                                   "source code of the library", "attribution notice"};
  examples::CommandLine command_line{
      "example_documents",
      "Indexes the files in a directory as passages and answers queries by similarity"};
  command_line.add_option("--dir", dir, "The directory of documents to index")
      ->check(CLI::ExistingDirectory);
  // One value per --query: a query is several words, given as one argument.
  command_line
      .add_option("--query", queries,
                  "A query, its best 3 passages printed; repeat for more (default: four about licence terms)")
      ->allow_extra_args(false)
      ->default_str("");
  CLI11_PARSE(command_line, argc, argv);

  // Slots of 4 MiB: a document crosses whole, and a passage can be a long run of text
  // without a line break. Shared memory is touched only as far as packets fill it.
  constexpr std::size_t kSlot = std::size_t{4} << 20;
  plumb::Pipeline pipeline{
      plumb::stage(documents, dir).name("documents").mode(plumb::Mode::sequential).in_flight(4)
          .max_message_size(kSlot),
      plumb::stage(passages, std::size_t{60}).name("passages").workers(2),
      plumb::stage(batch, std::size_t{16}).name("batch").mode(plumb::Mode::sequential).in_flight(4)
          .max_message_size(kSlot),
      plumb::stage(embed).name("embed").in_flight(2).max_message_size(kSlot),
      plumb::stage(build_index, queries).name("index").mode(plumb::Mode::thread),
  };
  const Index result = pipeline.run(plumb::Mode::process);

  std::cout << result.documents << " documents, " << result.passages << " passages\n";
  bool relevant = true;
  for (std::size_t i = 0; i < result.hits.size(); ++i) {
    const Hit& hit = result.hits[i];
    if (i == 0 || hit.query != result.hits[i - 1].query) {  // the best hit of its query
      std::cout << "\n\"" << hit.query << "\"\n";
      // The best passage must share a word with the query.
      bool shares = false;
      const std::vector<std::string> passage_words = words(hit.text);
      for (const std::string& word : words(hit.query)) {
        shares |= word.size() >= 3 && std::find(passage_words.begin(), passage_words.end(),
                                                word) != passage_words.end();
      }
      relevant &= shares;
    }
    std::cout << "  " << hit.score << "  " << hit.document << " #" << hit.passage << ": "
              << one_line(hit.text, 90) << "\n";
  }
  std::cout << "\n" << pipeline.last_stats().table();
  return relevant && result.passages > 0 ? 0 : 1;
}
