#pragma once
// SPDX-License-Identifier: MIT
// plumb/plumb.hpp: the umbrella header; includes the whole public API.

/// @namespace plumb
/// The whole public API: build a `Pipeline` from `stage()` specs and `run()` it. The names in
/// the nested namespace `detail` are internal.

#include <plumb/buffer.hpp>
#include <plumb/codec.hpp>
#include <plumb/error.hpp>
#include <plumb/generator.hpp>
#include <plumb/pipeline.hpp>
#include <plumb/run_options.hpp>
#include <plumb/service.hpp>
#include <plumb/progress.hpp>
#include <plumb/stage.hpp>
#include <plumb/stats.hpp>
#include <plumb/stream.hpp>
#include <plumb/view.hpp>
#include <plumb/worker.hpp>
