/*
 * The dashboard at /: pick a pk, a dimension, metrics (or formulas) and a time range;
 * a live graph, the children to drill into and the totals (dashboard.tables.js).
 * The choice lives in the URL (?pk=&dimension=&metric=&range=&from=&to=&period=
 * &depth=&area=&log=&compare=&threshold=&limit=&live=&key=), so a view can be
 * bookmarked, shared, and walked back with the browser's Back (zooms included).
 */
(function ($) {
    'use strict';

    var hw = $.hailwhale;
    var tables = hw.dashboardTables;
    // Relative to this page, so the dashboard also works behind a path prefix.
    var base = window.location.pathname.replace(/\/[^/]*$/, '');
    // A server with a read key is opened as /?key=...: the key goes on to every request.
    var key = new URLSearchParams(window.location.search).get('key') || null;
    var api = hw(base, key);
    var origin = window.location.origin + base;
    var POLL_MS = 5000;
    // The view's parameters as the URL and /graph.js spell them (`metric` may list several,
    // separated by commas); flags are 1 when on.
    var TEXTS = ['pk', 'metric', 'range', 'from', 'to', 'period', 'threshold', 'limit'];
    var FLAGS = ['area', 'log', 'compare'];
    var state = readState();
    var meta = {pks: [], pk_paths: {}, metrics: {}, periods: []};
    var sideGeneration = 0;
    var graphStarted = false;
    var lastDraw = null;

    function readState() {
        var query = new URLSearchParams(window.location.search);
        var depth = parseInt(query.get('depth'), 10);
        var read = {
            dimension: hw.toPath(query.get('dimension')),
            depth: isNaN(depth) ? 1 : Math.max(0, Math.min(2, depth)),
            live: query.get('live') !== '0'
        };
        $.each(TEXTS, function (i, name) {
            read[name] = query.get(name) || '';
        });
        $.each(FLAGS, function (i, name) {
            read[name] = query.get(name) === '1';
        });
        read.metric = read.metric || 'hits';
        return read;
    }

    /** The view as query parameters: the page's URL, and (with live=1) /graph.js'. */
    function stateQuery() {
        var query = new URLSearchParams();
        if (key) {
            query.set('key', key);
        }
        if (state.pk) {
            query.set('pk', state.pk);
        }
        if (state.dimension.length) {
            query.set('dimension', hw.dimKey(state.dimension));
        }
        $.each(TEXTS, function (i, name) {
            if (name !== 'pk' && state[name] !== '') {
                query.set(name, state[name]);
            }
        });
        query.set('depth', String(state.depth));
        $.each(FLAGS, function (i, name) {
            if (state[name]) {
                query.set(name, '1');
            }
        });
        if (!state.live) {
            query.set('live', '0');
        }
        return query;
    }

    function writeState(push) {
        var url = window.location.pathname + '?' + stateQuery().toString();
        if (url !== window.location.pathname + window.location.search) {
            window.history[push ? 'pushState' : 'replaceState'](null, '', url);
        }
    }

    function failure(xhr) {
        var answer = xhr.responseJSON;
        if (answer && answer.error) {
            return answer.error;
        }
        return xhr.status ? 'HTTP ' + xhr.status + ' ' + xhr.statusText
                          : 'HailWhale does not answer';
    }

    // -- controls ----------------------------------------------------------------

    function fillSelect($select, values, labelOf, chosen) {
        $select.empty();
        $.each(values, function (i, value) {
            $('<option></option>').val(value).text(labelOf(value)).appendTo($select);
        });
        $select.val(chosen);
    }

    function pkLabel(pk) {
        if (pk === '' || pk === '_') {
            return 'all events without a pk';
        }
        var path = meta.pk_paths[pk];  // /meta names pks by dim_key, with their paths
        return path ? path.join(' › ') : pk;
    }

    /** Why the chosen metrics cannot be stacked, or '' when they can. */
    function stackProblem() {
        var known = new hw.meta.Known(meta);
        var reasons = $.map(hw.metricsOf({metric: state.metric}), function (metric) {
            return known.unstackable(metric);
        });
        return reasons.length === hw.metricsOf({metric: state.metric}).length ? reasons[0] : '';
    }

    function syncControls() {
        var pks = [''].concat(meta.pks.filter(function (pk) { return pk !== '_'; }));
        if (state.pk && pks.indexOf(state.pk) < 0) {
            pks.push(state.pk);
        }
        fillSelect($('#pk'), pks, pkLabel, state.pk);
        var $list = $('#metric-list').empty();
        var names = Object.keys(meta.metrics);
        if (names.indexOf('hits') < 0) {
            names.unshift('hits');
        }
        $.each(names, function (i, name) {
            $('<option></option>').val(name).text(meta.metrics[name] || 'sum').appendTo($list);
        });
        $.each(names, function (i, name) {
            if (name !== 'hits' && meta.metrics[name] !== 'unique') {
                $('<option></option>').val(name + '/hits').text('average per event')
                    .appendTo($list);
            }
        });
        $('#metric').val(state.metric);
        $('#depth').val(String(state.depth));
        // Unique counts do not add up across children: no stacking, and the reason why.
        var problem = stackProblem();
        $('#area').prop({checked: state.area && !problem, disabled: !!problem});
        $('#area-reason').text(problem).prop('hidden', !problem);
        $('#live').prop('checked', state.live);
    }

    function loadMeta() {
        return api.meta(state.pk ? {pk: state.pk} : {}).then(function (answer) {
            meta = answer;
        }, function () {
            // Without /meta (an older server) the controls still take typed values.
            return $.Deferred().resolve().promise();
        });
    }

    function renderCrumbs() {
        var $crumbs = $('#crumbs').empty();
        var trail = [[]];
        $.each(state.dimension, function (i) {
            trail.push(state.dimension.slice(0, i + 1));
        });
        $.each(trail, function (i, path) {
            var label = path.length ? path[path.length - 1] : 'overall';
            var $item = $('<li></li>').appendTo($crumbs);
            if (i === trail.length - 1) {
                $('<span aria-current="page"></span>').text(label).appendTo($item);
            } else {
                $('<button type="button"></button>').text(label).on('click', function () {
                    drill(path);
                }).appendTo($item);
            }
        });
    }

    function renderExamples() {
        $('#count-example').text(
            "curl -g '" + origin + '/count?dimensions={"sales":"p42"}&metrics={"dollars":500}\'');
        var query = stateQuery();
        query.set('live', '1');
        $('#embed-example').text('<script src="' + origin + '/graph.js?' + query.toString() +
                                 '"></script>');
    }

    function renderTitle() {
        var where = state.dimension.length ? state.dimension.join(' › ') : 'overall';
        document.title = state.metric + ' · ' + where + ' · HailWhale';
    }

    // -- graph, children and totals ------------------------------------------------

    function graphOptions() {
        var options = {
            url: base, key: key, pk: state.pk || null, dimension: state.dimension.slice(),
            metric: state.metric, depth: state.depth, area: state.area && !stackProblem(),
            log: state.log, compare: state.compare, autoupdate: state.live, interval: POLL_MS,
            height: 340, drilldown: true
        };
        $.each(['range', 'from', 'to', 'period', 'threshold', 'limit'], function (i, name) {
            options[name] = state[name] === '' ? null : state[name];
        });
        return options;
    }

    function renderGraph() {
        var $graph = $('#graph');
        if (graphStarted) {
            $graph.hailwhale('update', graphOptions());
            return;
        }
        graphStarted = true;
        $graph.on('hailwhaleselect', function (event, entry) {
            event.preventDefault();
            if (entry.level > 0) {
                drill(entry.path);
            }
        }).on('hailwhalerange', function (event, range) {
            $.each(['range', 'from', 'to', 'period'], function (i, name) {
                state[name] = range[name] == null ? '' : String(range[name]);
            });
            changed(true, false);
        }).on('hailwhaleoptions', function (event, change) {
            $.each(change, function (name, value) {
                state[name] = typeof value === 'boolean' ? value : (value == null ? '' : String(value));
            });
            changed(true, false);
        }).on('hailwhaledraw', function (event, draw) {
            $('#status').removeClass('is-error').removeAttr('title').text(
                (state.live ? 'live · ' : 'paused · ') + 'updated ' +
                new Date().toLocaleTimeString());
            refreshSide(draw);
        }).on('hailwhaleerror', function (event, message) {
            // The message itself shows in the graph; the header only flags it.
            $('#status').addClass('is-error').text('the graph could not be updated')
                .attr('title', message);
        });
        $graph.hailwhale(graphOptions());
    }

    /** The children list and the totals, for the window the graph just drew. */
    function refreshSide(draw) {
        var generation = ++sideGeneration;
        var parent = state.dimension.slice();
        var hidden = draw.hidden;
        lastDraw = $.extend({depth: state.depth, why: hidden && hidden.small === 0
            ? 'past the limit per parent' : 'under the threshold or past the limit'}, draw);
        // The range the graph asked for, in the period that answered (as the plugin's own
        // /totals and /dimensions do), not the drawn buckets' stamps: the first bucket of a
        // live window is older than the period keeps once the next bucket starts.
        var asked = hw.graphParams($.extend({metric: draw.metrics[0]}, draw.range));
        var params = {metrics: draw.metrics[0], period: draw.period};
        $.each(['from', 'to'], function (i, name) {
            if (asked[name] !== undefined) {
                params[name] = asked[name];
            }
        });
        if (state.pk) {
            params.pk = state.pk;
        }
        if (parent.length) {
            params.dimensions = hw.dimKey(parent);
        }
        var limits = {};
        $.each(['threshold', 'limit'], function (i, name) {
            if (state[name] !== '') {
                limits[name] = state[name];
            }
        });
        var totals = $.extend({}, params, limits, {depth: 1});
        delete totals.period;
        delete totals.from;
        delete totals.to;
        if (!hw.isName(draw.metrics[0])) {
            totals.empty = params.empty = 'null';
        }
        api.dimensions(params).done(function (answer) {
            if (generation === sideGeneration) {
                $('#children-period').text('in ' + answer.period);
                tables.children($('#children'), answer, lastDraw, parent, drill);
            }
        }).fail(function (xhr) {
            if (generation === sideGeneration) {
                $('#children').empty().append($('<li class="error"></li>').text(failure(xhr)));
            }
        });
        api.rows(totals).done(function (answer) {
            if (generation === sideGeneration) {
                tables.totals($('#totals'), lastDraw, answer, parent, drill);
            }
        }).fail(function (xhr) {
            if (generation === sideGeneration) {
                $('#totals').empty().append($('<caption class="error"></caption>')
                    .text(failure(xhr)));
            }
        });
    }

    function render() {
        syncControls();
        renderCrumbs();
        renderExamples();
        renderTitle();
        renderGraph();
    }

    function drill(path) {
        state.dimension = path.slice();
        writeState(true);
        render();
    }

    /** The state changed: the URL follows (a new history entry with `push`); `redraw`
     * when the graph does not know yet (the graph's own controls told us). */
    function changed(push, redraw) {
        writeState(push);
        if (redraw === false) {
            syncControls();
            renderExamples();
        } else {
            render();
        }
    }

    $('#controls').on('submit', function (event) {
        event.preventDefault();
        $('#metric').trigger('change');
    });
    $('#pk').on('change', function () {
        state.pk = $(this).val();
        state.dimension = [];
        loadMeta().always(function () { changed(true); });
    });
    $('#metric').on('change', function () {
        var metric = hw.metricsOf({metric: $(this).val()}).join(', ');
        if (metric !== state.metric) {
            state.metric = metric;
            changed(true);
        }
    });
    $('#depth').on('change', function () {
        state.depth = parseInt($(this).val(), 10) || 0;
        changed(true);
    });
    $.each(['area', 'live'], function (i, name) {
        $('#' + name).on('change', function () {
            state[name] = this.checked;
            changed(false);
        });
    });
    $(window).on('popstate', function () {
        var pk = state.pk;
        state = readState();
        (pk === state.pk ? $.Deferred().resolve() : loadMeta()).always(render);
    });

    loadMeta().always(function () {
        writeState(false);
        render();
    });
}(window.jQuery));
