/*
 * The dashboard at /: pick a pk, a dimension, a metric (or formula) and a period;
 * a live graph, the children to drill into and the totals of every period.
 * The choice lives in the URL (?pk=&dimension=&metric=&period=&depth=&area=&live=&key=),
 * so a view can be bookmarked, shared, and walked back with the browser's Back.
 */
(function ($) {
    'use strict';

    var hw = $.hailwhale;
    // Relative to this page, so the dashboard also works behind a path prefix.
    var base = window.location.pathname.replace(/\/[^/]*$/, '');
    // A server with a read key is opened as /?key=...: the key goes on to every request.
    var key = new URLSearchParams(window.location.search).get('key') || null;
    var api = hw(base, key);
    var origin = window.location.origin + base;
    var POLL_MS = 5000;
    var state = readState();
    var meta = {pks: [], metrics: {}, periods: []};
    var sideGeneration = 0;
    var sideBusy = false;
    var graphStarted = false;

    function readState() {
        var query = new URLSearchParams(window.location.search);
        var depth = parseInt(query.get('depth'), 10);
        return {
            pk: query.get('pk') || '',
            dimension: hw.toPath(query.get('dimension')),
            metric: query.get('metric') || 'hits',
            period: query.get('period') || '',
            depth: isNaN(depth) ? 1 : Math.max(0, Math.min(2, depth)),
            area: query.get('area') === '1',
            live: query.get('live') !== '0'
        };
    }

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
        query.set('metric', state.metric);
        if (state.period) {
            query.set('period', state.period);
        }
        query.set('depth', String(state.depth));
        if (state.area) {
            query.set('area', '1');
        }
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

    function apiParams(extra) {
        var params = {metrics: state.metric};
        if (state.pk) {
            params.pk = state.pk;
        }
        if (state.dimension.length) {
            params.dimensions = hw.dimKey(state.dimension);
        }
        return $.extend(params, extra);
    }

    function number(value) {
        return Number(value).toLocaleString(undefined, {maximumFractionDigits: 4});
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

    function syncControls() {
        var pks = [''].concat(meta.pks.filter(function (pk) { return pk !== '_'; }));
        if (state.pk && pks.indexOf(state.pk) < 0) {
            pks.push(state.pk);
        }
        fillSelect($('#pk'), pks, pkLabel, state.pk);
        var periods = meta.periods.slice();
        if (state.period && periods.indexOf(state.period) < 0) {
            periods.push(state.period);
        }
        fillSelect($('#period'), periods, function (name) {
            var parts = name.split(':');
            return parts.length === 2 ? parts[0] + ' buckets, last ' + parts[1] : name;
        }, state.period);
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
        $('#area').prop('checked', state.area);
        $('#live').prop('checked', state.live);
    }

    function loadMeta() {
        return api.meta(state.pk ? {pk: state.pk} : {}).then(function (answer) {
            meta = answer;
        }, function () {
            // Without /meta (an older server) the controls still take typed values.
            return $.Deferred().resolve().promise();
        }).then(function () {
            if (!state.period && meta.periods.length) {
                state.period = meta.periods[0];
                writeState(false);
            }
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
        return {
            url: base, key: key, pk: state.pk || null, dimension: state.dimension.slice(),
            metric: state.metric, period: state.period || null, depth: state.depth,
            area: state.area, autoupdate: state.live, interval: POLL_MS, height: 340,
            drilldown: true
        };
    }

    function renderGraph() {
        var $graph = $('#graph');
        if (!graphStarted) {
            graphStarted = true;
            $graph.on('hailwhaleselect', function (event, entry) {
                event.preventDefault();
                if (entry.level > 0) {
                    drill(entry.path);
                }
            }).on('hailwhaledraw', function () {
                $('#status').removeClass('is-error').removeAttr('title').text(
                    (state.live ? 'live · ' : 'paused · ') + 'updated ' +
                    new Date().toLocaleTimeString());
                if (state.live) {
                    refreshSide();
                }
            }).on('hailwhaleerror', function (event, message) {
                // The message itself shows in the graph; the header only flags it.
                $('#status').addClass('is-error').text('the graph could not be updated')
                    .attr('title', message);
            });
            $graph.hailwhale(graphOptions());
        } else {
            $graph.hailwhale('update', graphOptions());
        }
    }

    function renderChildren(answer) {
        var $list = $('#children').empty();
        $('#children-period').text(answer.period ? 'in ' + answer.period : '');
        if (!answer.children.length) {
            $('<li class="empty"></li>').text('No children counted in this window.')
                .appendTo($list);
            return;
        }
        $.each(answer.children, function (i, child) {
            var total = child.totals[Object.keys(child.totals)[0]];
            var $button = $('<button type="button"></button>').attr('title', 'Drill down')
                .on('click', function () { drill(state.dimension.concat([child.name])); });
            $('<span class="name"></span>').text(child.name).appendTo($button);
            $('<span class="value"></span>').text(number(total)).appendTo($button);
            $('<li></li>').append($button).appendTo($list);
        });
    }

    /** answer: [[period, [[dim_key, {metric: total}, path], ...]], ...], as the server ranks them. */
    function renderTotals(answer) {
        var periods = [];
        var rowsOf = {};
        var rows = [];  // every period's rows, in the server's order: the parent first
        $.each(answer, function (i, period) {
            var byKey = rowsOf[period[0]] = {};
            periods.push(period[0]);
            $.each(period[1], function (j, row) {
                if (!rows.some(function (known) { return known[0] === row[0]; })) {
                    rows.push(row);
                }
                byKey[row[0]] = row[1];
            });
        });
        function total(key, period) {
            var totals = rowsOf[period][key];
            return totals ? totals[Object.keys(totals)[0]] : null;
        }
        var $table = $('#totals').empty();
        var $head = $('<tr></tr>').appendTo($('<thead></thead>').appendTo($table));
        $('<th scope="col"></th>').text('dimension').appendTo($head);
        $.each(periods, function (i, period) {
            $('<th scope="col" class="num"></th>').text(period).appendTo($head);
        });
        var $body = $('<tbody></tbody>').appendTo($table);
        var parentPath = state.dimension;
        $.each(rows, function (i, row) {
            var key = row[0];
            var path = row[2];
            var $row = $('<tr></tr>').appendTo($body);
            var $name = $('<th scope="row"></th>').appendTo($row);
            if (i === 0) {
                $row.addClass('parent');
                $name.text(parentPath.length ? parentPath.join(' › ') : 'overall');
            } else {
                $('<button type="button"></button>').text(path.slice(parentPath.length).join(' › '))
                    .on('click', function () { drill(path); }).appendTo($name);
            }
            $.each(periods, function (j, period) {
                var value = total(key, period);
                $('<td class="num"></td>').text(value == null ? '–' : number(value))
                    .appendTo($row);
            });
        });
    }

    function refreshSide() {
        if (sideBusy) {
            return;
        }
        sideBusy = true;
        var generation = ++sideGeneration;
        var period = state.period ? {period: state.period} : {};
        var children = api.dimensions(apiParams(period));
        var totals = api.rows(apiParams({depth: 1}));
        children.done(function (answer) {
            if (generation === sideGeneration) {
                renderChildren(answer);
            }
        }).fail(function (xhr) {
            if (generation === sideGeneration) {
                $('#children').empty().append($('<li class="error"></li>').text(failure(xhr)));
            }
        });
        totals.done(function (answer) {
            if (generation === sideGeneration) {
                renderTotals(answer);
            }
        }).fail(function (xhr) {
            if (generation === sideGeneration) {
                $('#totals').empty().append($('<caption class="error"></caption>')
                    .text(failure(xhr)));
            }
        });
        $.when(children, totals).always(function () {
            sideBusy = false;
        });
    }

    function render() {
        syncControls();
        renderCrumbs();
        renderExamples();
        renderTitle();
        renderGraph();
        sideBusy = false;
        refreshSide();
    }

    function drill(path) {
        state.dimension = path.slice();
        writeState(true);
        render();
    }

    function changed(push) {
        writeState(push);
        render();
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
        var metric = $.trim($(this).val()) || 'hits';
        if (metric !== state.metric) {
            state.metric = metric;
            changed(true);
        }
    });
    $('#period').on('change', function () {
        state.period = $(this).val();
        changed(true);
    });
    $('#depth').on('change', function () {
        state.depth = parseInt($(this).val(), 10) || 0;
        changed(true);
    });
    $('#area').on('change', function () {
        state.area = this.checked;
        changed(false);
    });
    $('#live').on('change', function () {
        state.live = this.checked;
        changed(false);
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
