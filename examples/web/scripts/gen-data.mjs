// Writes the demo's input: `station;temperature` lines, deterministic (a fixed-seed
// PRNG), so the page's result can be checked exactly.
//
//   node scripts/gen-data.mjs OUT.csv [ROWS]
import { writeFileSync } from 'node:fs';

const STATIONS = [
    ['Abha', 18.0], ['Bergen', 7.7], ['Cairo', 21.4], ['Dakar', 24.0],
    ['Hamburg', 9.7], ['Lima', 19.7], ['Oslo', 5.7], ['Yakutsk', -8.8],
];

export function generate(rows) {
    let seed = 0x5eed;
    const next = () => {
        // mulberry32
        seed = (seed + 0x6d2b79f5) | 0;
        let t = seed;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const lines = [];
    for (let i = 0; i < rows; i++) {
        const [name, mean] = STATIONS[Math.floor(next() * STATIONS.length)];
        const tenths = Math.round(mean * 10 + (next() - 0.5) * 300);
        lines.push(`${name};${(tenths / 10).toFixed(1)}`);
    }
    return lines.join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
    const [out, rows = '20000'] = process.argv.slice(2);
    writeFileSync(out, generate(Number(rows)));
}
